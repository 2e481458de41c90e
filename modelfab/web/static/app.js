/* modelfab ui: a little hand-written script, no library. Every text comes from the page's catalogue. */
(function () {
  "use strict";
  var dataEl = document.getElementById("page-data");
  var DATA = {};
  try { DATA = JSON.parse(dataEl ? dataEl.textContent : "{}") || {}; } catch (e) { DATA = {}; }
  var MSG = DATA.messages || {};
  var CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function T(key, params) {
    var s = Object.prototype.hasOwnProperty.call(MSG, key) ? MSG[key] : key;
    if (params) {
      s = s.replace(/\{(\w+)\}/g, function (m, k) { return params[k] !== undefined ? String(params[k]) : m; });
    }
    return s;
  }
  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function setText(sel, text) { var el = typeof sel === "string" ? $(sel) : sel; if (el) { el.textContent = text; } }
  var toastTimer = null;
  function toast(text, isError) {
    var el = $("#toast");
    if (!el) { return; }
    el.textContent = text;
    el.className = "toast show" + (isError ? " error" : "");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { el.className = "toast"; }, isError ? 5000 : 1500);
  }
  function fmt(v, digits) {
    if (v === null || v === undefined || isNaN(v)) { return "–"; }
    return Number(v).toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  function fmtThr(v) {  // thresholds near 0 (rare classes) differ in the 5th-6th digit: 4 significant digits
    if (v === null || v === undefined || isNaN(v)) { return "–"; }
    var a = Math.abs(Number(v));
    return a !== 0 && a < 0.1 ? Number(v).toPrecision(4) : fmt(v, 4);
  }
  function post(url, fields) {
    var body = new URLSearchParams();
    Object.keys(fields || {}).forEach(function (k) { body.append(k, fields[k] === null ? "" : fields[k]); });
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRF-Token": CSRF, "Accept": "application/json", "X-Requested-With": "fetch" }
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) { throw new Error((j.error && (j.error.detail || j.error.message)) || ("HTTP " + r.status)); }
        return j;
      });
    });
  }

  /* -- small things on every page ----------------------------------------------------- */
  $all("form.lang-switch").forEach(function (f) {  /* come back to the address as it is now, query and all */
    f.addEventListener("submit", function () {
      var next = $("input[name=next]", f);
      if (next) { next.value = location.pathname + location.search; }
    });
  });
  $all("[data-back]").forEach(function (a) {
    a.addEventListener("click", function (e) { if (history.length > 1) { e.preventDefault(); history.back(); } });
  });
  $all("[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      var src = $(b.getAttribute("data-copy"));
      if (src && navigator.clipboard) {
        navigator.clipboard.writeText(src.textContent).then(function () { toast(T("common.js.copied")); });
      }
    });
  });

  /* -- actions that stop something ask first ---------------------------------------------------- */
  $all("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { e.preventDefault(); e.stopImmediatePropagation(); }
    });
  });

  /* -- drop zones and uploads with progress ---------------------------------------------- */
  $all("[data-drop]").forEach(function (zone) {
    var input = $("input[type=file]", zone);
    var name = $("[data-file-name]", zone);
    function show() { setText(name, input.files && input.files[0] ? input.files[0].name : ""); }
    input.addEventListener("change", show);
    ["dragenter", "dragover"].forEach(function (ev) {
      zone.addEventListener(ev, function (e) { e.preventDefault(); zone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (ev) {
      zone.addEventListener(ev, function (e) { e.preventDefault(); zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (e) {
      if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; show(); }
    });
  });

  $all("form[data-upload]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var bar = $(".upload-progress", form);
      var err = $("[data-error]", form);
      var button = $("button[type=submit]", form);
      err.hidden = true;
      bar.hidden = false;
      bar.value = 0;
      button.disabled = true;
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-CSRF-Token", CSRF);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-Requested-With", "fetch");
      var status = $("[data-upload-status]", form);
      xhr.upload.onprogress = function (ev) {
        if (ev.lengthComputable) {
          bar.value = ev.loaded / ev.total;
          if (status) { status.hidden = false; setText(status, T("common.js.uploading", { pct: fmt(100 * ev.loaded / ev.total, 0) })); }
        }
      };
      xhr.upload.onload = function () {  // all sent: the server reads the file now (an indeterminate bar)
        bar.removeAttribute("value");
        if (status) { status.hidden = false; setText(status, T("common.js.reading")); }
      };
      xhr.onload = function () {
        var j = {};
        try { j = JSON.parse(xhr.responseText); } catch (x) { j = {}; }
        if (xhr.status >= 200 && xhr.status < 300 && j.url) { window.location = j.url; return; }
        button.disabled = false;
        bar.hidden = true;
        if (status) { status.hidden = true; }
        err.hidden = false;
        err.textContent = (j.error && (j.error.detail || j.error.message)) || T("common.js.upload_failed", { status: xhr.status });
      };
      xhr.onerror = function () {
        button.disabled = false; bar.hidden = true; err.hidden = false; err.textContent = T("common.js.network");
      };
      xhr.send(new FormData(form));
    });
  });

  /* -- try it: the drop zone names what the chosen model takes; text models have fields to type into -- */
  var predictModel = $("#predict-model");
  if (predictModel) {
    var choosePredictModel = function () {
      var opt = predictModel.options[predictModel.selectedIndex], ref = predictModel.value, typed = false;
      $all("[data-fields-for]").forEach(function (fs) {
        var mine = fs.getAttribute("data-fields-for") === ref;
        fs.hidden = !mine; fs.disabled = !mine; typed = typed || mine;
      });
      var file = $("#predict-form input[type=file]");
      if (file) { file.required = !typed; }
      var hint = $("#predict-drop-text"), takes = opt ? opt.getAttribute("data-takes") : "";
      if (hint && takes && hint.getAttribute("data-" + takes)) { setText(hint, hint.getAttribute("data-" + takes)); }
    };
    predictModel.addEventListener("change", choosePredictModel);
    choosePredictModel();
  }

  /* -- train page --------------------------------------------------------------------------- */
  var trainForm = $("#train-form");
  if (trainForm && DATA.datasets) {
    var dsSel = $("#train-dataset"), target = $("#train-target"), task = $("#train-task");
    var nameInput = $("#train-name"), suggestion = $("#train-suggestion");
    var normalInput = $("#train-normal-label"), anomalyFields = $("#train-anomaly-fields");
    var showAnomalyFields = function () {  // the label of good items matters for anomaly detection only
      var info = DATA.datasets[dsSel.value] || {};
      if (!anomalyFields) { return; }
      anomalyFields.hidden = (info.kind || "table") !== "signal" ||
        !(task.value === "anomaly" || (task.value === "auto" && info.suggested === "anomaly"));
    };
    var updateTrain = function () {
      var info = DATA.datasets[dsSel.value] || {};
      var kind = info.kind || "table";
      $all("[data-for]", trainForm).forEach(function (el) {
        var show = el.getAttribute("data-for").split(" ").indexOf(kind) >= 0;
        el.hidden = !show;
        if (el.tagName === "OPTION") { el.disabled = !show; }
      });
      if (task.selectedOptions[0] && task.selectedOptions[0].disabled) { task.value = "auto"; }
      nameInput.placeholder = info.name || "";
      $all("[data-media]", trainForm).forEach(function (el) { el.hidden = el.getAttribute("data-media") !== (info.media || "signal"); });
      if (normalInput && info.normal !== undefined) { normalInput.value = info.normal; }
      showAnomalyFields();
      if (kind === "table") {
        var previous = target.value;
        target.innerHTML = "";
        var cols = info.columns || [];
        var best = null;
        cols.forEach(function (c) {
          var o = document.createElement("option");
          o.value = c.name;
          o.textContent = c.name + "  ·  " + T("train.js.kind_" + c.kind);
          target.appendChild(o);
          if (!best && /^(label|target|quality|class|y|defect|result|status|ok)$/i.test(c.name)) { best = c.name; }
        });
        if (!best && cols.length) { best = cols[cols.length - 1].name; }
        target.value = cols.some(function (c) { return c.name === previous; }) ? previous : best;
        suggestTable();
      } else {
        setText(suggestion, T("train.js.suggest", { task: T("train.js.task_" + info.suggested) }));
      }
    };
    var suggestTable = function () {
      var info = DATA.datasets[dsSel.value] || {};
      var col = (info.columns || []).filter(function (c) { return c.name === target.value; })[0];
      if (!col) { setText(suggestion, ""); return; }
      var reg = col.kind === "numeric" && (col.unique || 0) > 20;
      setText(suggestion, T("train.js.suggest", { task: T("train.js.task_" + (reg ? "regression" : "classification")) }));
    };
    dsSel.addEventListener("change", updateTrain);
    task.addEventListener("change", showAnomalyFields);
    target.addEventListener("change", suggestTable);
    updateTrain();
    if (DATA.target && Array.prototype.some.call(target.options, function (o) { return o.value === DATA.target; })) {
      target.value = DATA.target;  // confirmed in the import preview
      suggestTable();
    }
  }

  /* -- job page: live progress over server-sent events ------------------------------------ */
  if (DATA.job && DATA.events) {
    var terminal = ["done", "failed", "cancelled"];
    var startedTerminal = terminal.indexOf(DATA.job.state) >= 0;
    var metricName = function (m) {  // the search's metric in words ("out-of-fold accuracy" of series models)
      if (!m) { return ""; }
      var oof = /^out-of-fold /.test(m), key = "metric." + m.replace(/^out-of-fold /, "");
      var bare = m.replace(/^out-of-fold /, "");
      var name = Object.prototype.hasOwnProperty.call(MSG, key) ? MSG[key] : bare;
      if ((DATA.lower_is_better || []).indexOf(bare) >= 0) { name = T("job.js.metric_lower", { metric: name }); }
      return oof ? T("job.js.out_of_fold", { metric: name }) : name;
    };
    var renderJob = function (job) {
      var live = job.live || {};
      var prog = $("#job-progress");
      if (prog) { prog.value = job.state === "done" ? 1 : job.progress; }
      var over = terminal.indexOf(job.state) >= 0;  // the final time with a decimal, as the model's "time used"
      if (live.elapsed_s !== undefined) { setText("#live-elapsed", T("job.js.seconds", { n: fmt(live.elapsed_s, over ? 1 : 0) })); }
      if (over) { setText("#live-left", "–"); }  // nothing is left once the job has ended
      else if (live.left_s !== undefined) { setText("#live-left", T("job.js.seconds", { n: fmt(live.left_s, 0) })); }
      if (live.trials !== undefined) { setText("#live-trials", String(live.trials)); }
      if (live.searched === false) {  // fitted without a search (image anomaly): no trials or best score to show
        document.querySelectorAll(".live-search").forEach(function (row) { row.hidden = true; });
      }
      if (live.files_total !== undefined) {
        setText("#live-files", live.files_done + " / " + live.files_total);
        var filesRow = $("#live-files-row"); if (filesRow) { filesRow.hidden = false; }
      }
      var board = live.leaderboard && live.leaderboard.length ? live.leaderboard : (job.result || {}).final_board;
      if (board && board.length) {  // the leaderboard's first row, so the two never disagree
        var top = board[0], topScore = top.best !== undefined ? top.best : top.score;
        setText("#live-best", fmt(topScore, 4) + (live.metric ? " (" + metricName(live.metric) + ")" : "") + (top.learner ? " · " + top.learner : ""));
      } else if (live.best_score !== undefined && live.best_score !== null) {
        setText("#live-best", fmt(live.best_score, 4) + (live.metric ? " (" + metricName(live.metric) + ")" : "") + (live.best_learner ? " · " + live.best_learner : ""));
      }
      var note = $("#job-reload-note"); if (note && over) { note.hidden = true; }
      var msgKey = "job.js.msg_" + String(job.message || "").replace(/[^a-z]+/gi, "_").toLowerCase();
      setText("#live-message", Object.prototype.hasOwnProperty.call(MSG, msgKey) ? T(msgKey) : (job.message || ""));
      var badge = $("#job-state .badge");
      if (badge) { badge.className = "badge state-" + job.state; badge.textContent = T("job.js.state_" + job.state); }
      if (job.error) { var e = $("#job-error"); e.hidden = false; e.textContent = job.error; }
      renderBoard(board, live.metric);
      var cancel = $("#cancel-form");
      if (cancel && job.state !== "running" && job.state !== "queued") { cancel.hidden = true; }
    };
    var renderBoard = function (rows, metric) {
      var box = $("#leaderboard-box");
      if (!box || !rows || !rows.length) { return; }
      box.hidden = false;
      var body = $("#leaderboard tbody");
      body.innerHTML = "";
      rows.forEach(function (r, i) {
        var tr = document.createElement("tr");
        if (i === 0) { tr.className = "lead-row"; }
        var best = r.best !== undefined ? r.best : r.score;
        [String(r.rank || i + 1), r.learner || "", r.detail || "", r.trials ? String(r.trials) : "–",
         fmt(best, 4) + (metric && i === 0 ? " (" + metricName(metric) + ")" : ""),
         r.at_s !== undefined ? T("job.js.seconds", { n: fmt(r.at_s, 0) }) : "–"].forEach(function (v, j) {
          var td = document.createElement("td");
          if (j === 0 || j >= 3) { td.className = "num"; }
          td.textContent = v;
          tr.appendChild(td);
        });
        body.appendChild(tr);
      });
    };
    renderJob(DATA.job);
    if (!startedTerminal && window.EventSource) {
      var es = new EventSource(DATA.events);
      es.addEventListener("job", function (ev) {
        var job = JSON.parse(ev.data);
        renderJob(job);
        if (terminal.indexOf(job.state) >= 0) {
          es.close();
          var r = job.result || {};
          var next = job.kind === "threshold" && job.state === "done" && r.name ? "/models/" + r.name + "/" + r.version : null;
          setTimeout(function () { if (next) { window.location = next; } else { window.location.reload(); } }, 400);
        }
      });
      es.addEventListener("end", function () { es.close(); });
    }
  }

  /* -- evaluate page: threshold slider ------------------------------------------------------- */
  // Anomaly models: flagged when score > threshold. Two-class classifiers (h.binary): the second
  // label (h.positive) is predicted when its probability >= threshold, as the model package does.
  var slider = $("#threshold-slider");
  var thrState = null, thrListeners = [];  // the slider's threshold and counts, for the anomaly matrix
  var onThreshold = function (fn) { thrListeners.push(fn); if (thrState) { fn(thrState); } };
  if (slider && DATA.holdout) {
    var h = DATA.holdout;
    var normal = [], abnormal = [];
    h.scores.forEach(function (s, i) { (h.y_true[i] ? abnormal : normal).push(s); });
    var uniq = h.scores.slice().sort(function (a, b) { return a - b; })
      .filter(function (v, i, a) { return i === 0 || v !== a[i - 1]; });
    // candidate thresholds: below all, between neighbours, above all (binary) and the current one
    var cands = h.binary ? [0] : [uniq[0] - Math.max(1e-9, Math.abs(uniq[0]) * 0.01)];
    for (var i = 0; i + 1 < uniq.length; i++) { cands.push((uniq[i] + uniq[i + 1]) / 2); }
    cands.push(h.binary ? (uniq[uniq.length - 1] < 1 ? (uniq[uniq.length - 1] + 1) / 2 : 1) : uniq[uniq.length - 1]);
    cands.push(h.threshold);
    cands.sort(function (a, b) { return a - b; });
    cands = cands.filter(function (v, i, a) { return i === 0 || v !== a[i - 1]; });
    slider.min = 0; slider.max = cands.length - 1; slider.step = 1;
    slider.value = cands.indexOf(h.threshold);
    var input = $("#threshold-input"), save = $("#threshold-save");
    var flagged = h.binary ? function (s, thr) { return s >= thr; } : function (s, thr) { return s > thr; };
    var updateThr = function () {
      var thr = cands[Number(slider.value)];
      var fa = normal.filter(function (s) { return flagged(s, thr); }).length;
      var miss = abnormal.filter(function (s) { return !flagged(s, thr); }).length;
      var faPct = normal.length ? fmt(100 * fa / normal.length, 1) : "–";
      setText("#fa-count", String(fa));
      setText("#miss-count", String(miss));
      if (h.binary) {
        setText("#fa-text", T("model.js.bin_fa", { n: fa, total: normal.length, pct: faPct, neg: h.negative, pos: h.positive }));
        setText("#miss-text", abnormal.length
          ? T("model.js.bin_miss", { n: miss, total: abnormal.length, pct: fmt(100 * miss / abnormal.length, 1), pos: h.positive })
          : T("model.js.bin_no_positive", { pos: h.positive }));
      } else {
        setText("#fa-text", T("model.js.fa", { n: fa, total: normal.length, pct: faPct }));
        setText("#miss-text", abnormal.length
          ? T("model.js.miss", { n: miss, total: abnormal.length, pct: fmt(100 * miss / abnormal.length, 1) })
          : T("model.js.no_abnormal"));
      }
      setText("#thr-value", fmtThr(thr));
      if (input) { input.value = String(thr); }
      if (save) { save.disabled = thr === h.threshold; }
      thrState = { thr: thr, fa: fa, miss: miss, normal: normal.length, abnormal: abnormal.length };
      thrListeners.forEach(function (fn) { fn(thrState); });
    };
    slider.addEventListener("input", updateThr);
    updateThr();
  }

  /* -- evaluate page: confusion-matrix cells open their held-out examples ----------------------- */
  if (DATA.confusion) {
    var cmBox = $("#cm-examples"), cmBody = $("#cm-examples-body");
    var cell = function (text) { var td = document.createElement("td"); td.textContent = text; return td; };
    var cmAnomaly = !!DATA.confusion.anomaly, cmBinary = !!DATA.confusion.binary, cmThr = null;
    if (cmAnomaly || cmBinary) {
      // anomaly models and two-class tables: the 2x2 matrix follows the slider (anomaly when the score is above
      // the threshold; the second class when its probability is at least the threshold)
      onThreshold(function (st) {
        var m = [[st.normal - st.fa, st.fa], [st.miss, st.abnormal - st.miss]];
        var changed = cmThr !== null && cmThr !== st.thr;
        cmThr = st.thr;
        $all("#confusion button.cell").forEach(function (b) {
          var i = Number(b.getAttribute("data-i")), j = Number(b.getAttribute("data-j")), v = m[i][j];
          var total = m[i][0] + m[i][1];
          b.textContent = String(v);
          b.disabled = !v || !DATA.confusion.examples;
          b.parentNode.className = (i === j ? "diag" : "off") + " heat-" + (total ? Math.floor(v * 5 / total) : 0);
          if (changed) { b.classList.remove("on"); }
        });
        setText("#cm-correct", T("model.js.cm_correct", { n: m[0][0] + m[1][1], total: st.normal + st.abnormal }));
        if (changed && cmBox) { cmBox.hidden = true; }  // the open cell was for another threshold
      });
    }
    $all("#confusion button.cell").forEach(function (b) {
      b.addEventListener("click", function () {
        $all("#confusion button.cell").forEach(function (x) { x.classList.toggle("on", x === b); });
        var i = Number(b.getAttribute("data-i")), j = Number(b.getAttribute("data-j"));
        var url = DATA.confusion.url + "/" + i + "/" + j;
        if ((cmAnomaly || cmBinary) && cmThr !== null) { url += "?threshold=" + encodeURIComponent(String(cmThr)); }
        fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
          .then(function (r) { return r.json().then(function (j) { if (!r.ok) { throw new Error((j.error && j.error.detail) || ("HTTP " + r.status)); } return j; }); })
          .then(function (res) {
            cmBox.hidden = false;
            if (cmAnomaly) {
              var names = DATA.confusion.names || [];
              setText("#cm-examples-title", T("model.js.cm_anomaly_examples",
                { "true": names[i], pred: names[j], thr: fmtThr(res.threshold), n: res.count }));
            } else {
              setText("#cm-examples-title", T("model.js.cm_examples", { "true": res["true"], pred: res.pred, n: res.count }));
            }
            cmBody.innerHTML = "";
            var shown = 0;
            if (res.kind === "rows") {
              var tbl = document.createElement("table"); tbl.className = "grid compact"; tbl.id = "cm-rows";
              var head = document.createElement("tr");
              var th0 = document.createElement("th"); th0.textContent = T("model.js.cm_row"); head.appendChild(th0);
              res.columns.forEach(function (c) { var th = document.createElement("th"); th.textContent = c; head.appendChild(th); });
              var thead = document.createElement("thead"); thead.appendChild(head); tbl.appendChild(thead);
              var tb = document.createElement("tbody");
              res.rows.forEach(function (row, k) {
                var tr = document.createElement("tr");
                tr.appendChild(cell(String(res.positions[k])));
                row.forEach(function (v) { tr.appendChild(cell(v)); });
                tb.appendChild(tr);
              });
              tbl.appendChild(tb);
              var wrap = document.createElement("div"); wrap.className = "scroll"; wrap.appendChild(tbl);
              cmBody.appendChild(wrap);
              shown = res.rows.length;
            } else if (res.kind === "files") {
              var grid = document.createElement("div"); grid.className = "example-grid"; grid.id = "cm-files";
              res.items.forEach(function (it) {
                var fig = document.createElement("figure");
                if (it.thumb) {
                  var img = document.createElement("img"); img.className = "thumb"; img.loading = "lazy";
                  img.width = 210;
                  if (!/\.(jpe?g|png|bmp|tiff?)$/i.test(it.file)) { img.height = 75; }  // recordings: a wide strip
                  img.src = it.thumb; img.alt = it.file; fig.appendChild(img);
                }
                var cap = document.createElement("figcaption"); cap.textContent = it.file; fig.appendChild(cap);
                if (it.score !== undefined) {
                  var sc = document.createElement("span"); sc.className = "score";
                  sc.textContent = T("model.js.cm_score", { score: fmt(it.score, 4) }); cap.appendChild(sc);
                }
                if (it.item) {
                  var link = document.createElement("a"); link.className = "item-link"; link.href = it.item;
                  link.textContent = T("model.js.cm_open_item"); cap.appendChild(document.createTextNode(" ")); cap.appendChild(link);
                }
                if (it.idx !== null && it.idx !== undefined && /\.(wav|flac|ogg)$/i.test(it.file)) {
                  var au = document.createElement("audio"); au.controls = true; au.preload = "none";
                  au.src = DATA.confusion.base + "/audio/" + it.idx; fig.appendChild(au);
                }
                grid.appendChild(fig);
              });
              cmBody.appendChild(grid);
              shown = res.items.length;
            }
            if (shown < res.count) {
              var more = document.createElement("p"); more.className = "muted small";
              more.textContent = T("model.js.cm_more", { n: shown }); cmBody.appendChild(more);
            }
            cmBox.scrollIntoView({ block: "nearest" });
          })
          .catch(function (err) { toast(T("model.js.cm_load_failed", { error: err.message }), true); });
      });
    });
  }

  /* -- models page: deployments refresh while one is starting --------------------------------- */
  if (DATA.deployments && DATA.deployments.some(function (d) { return d.state === "starting"; })) {
    var pollDeploy = function () {
      fetch("/deployments", { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (j) {
          var starting = (j.deployments || []).some(function (d) { return d.state === "starting"; });
          if (!starting) { window.location.reload(); } else { setTimeout(pollDeploy, 1000); }
        }).catch(function () { setTimeout(pollDeploy, 3000); });
    };
    setTimeout(pollDeploy, 1000);
  }

  /* -- labelling: keyboard first, bulk selection, colours, suggestions --------------------------- */
  var list = $("#items");
  if (list && DATA.items) {
    var items = DATA.items, defs = (DATA.defs || []).slice(), cur = 0, undo = [], anchor = null;
    var labels = defs.map(function (d) { return d.name; });
    var rows = $all("li", list);
    var audio = $("#current-audio"), img = $("#current-thumb");
    var selected = {};
    var colorOf = function (lab) {
      var d = defs.filter(function (x) { return x.name === lab; })[0];
      return d ? d.color : null;
    };
    var paint = function (el, lab) {
      var c = lab !== null && lab !== undefined ? colorOf(lab) : null;
      if (!el) { return; }
      if (c) {
        el.style.setProperty("--label-color", c); el.classList.add("colored");
        var v = parseInt(c.slice(1), 16), lum = 0.299 * (v >> 16) + 0.587 * ((v >> 8) & 255) + 0.114 * (v & 255);
        el.style.setProperty("--label-ink", lum > 160 ? "#111827" : "#fff");  // light colours get dark text
      } else { el.style.removeProperty("--label-color"); el.style.removeProperty("--label-ink"); el.classList.remove("colored"); }
    };
    var drawButtons = function () {
      var box = $("#label-buttons");
      box.innerHTML = "";
      defs.slice(0, 9).forEach(function (d, i) {
        var b = document.createElement("button");
        b.type = "button"; b.className = "btn label-btn"; b.setAttribute("data-label", d.name); b.title = d.name;
        var k = document.createElement("kbd"); k.textContent = String(i + 1);
        var sw = document.createElement("span"); sw.className = "swatch";
        b.appendChild(k); b.appendChild(sw); b.appendChild(document.createTextNode(" " + d.name));
        b.style.setProperty("--label-color", d.color);
        b.addEventListener("click", function () { assign(d.name); });
        box.appendChild(b);
      });
      markButtons();
    };
    var markButtons = function () {
      $all(".label-btn").forEach(function (b) { b.classList.toggle("on", !!items[cur] && b.getAttribute("data-label") === items[cur].label); });
    };
    var selIdx = function () { return Object.keys(selected).map(Number).sort(function (a, b) { return a - b; }); };
    var drawSelection = function () {
      var n = selIdx().length;
      rows.forEach(function (r, j) { r.classList.toggle("picked", !!selected[j]); $(".pick", r).checked = !!selected[j]; });
      setText("#selected-count", n ? T("label.js.selected", { n: n }) : "");
      var clr = $("#select-clear"); if (clr) { clr.hidden = !n; }
    };
    var toggle = function (j, on) { if (on) { selected[j] = true; } else { delete selected[j]; } };
    var showSuggestion = function () {
      var el = $("#suggestion"), it = items[cur];
      if (!el || !it) { return; }
      if (it.suggest && it.label !== it.suggest) {
        el.hidden = false;
        setText(el, T("label.js.suggest", { label: it.suggest, pct: fmt(100 * it.confidence, 0) }));
        paint(el, it.suggest);
      } else { el.hidden = true; }
    };
    var show = function (i, play) {
      if (!items.length) { return; }
      cur = Math.max(0, Math.min(items.length - 1, i));
      rows.forEach(function (r, j) { r.classList.toggle("cur", j === cur); });
      var phone = window.matchMedia && window.matchMedia("(max-width: 600px)").matches;
      if (!phone) { rows[cur].scrollIntoView({ block: "nearest" }); }  // phones: the list is below the picture
      var it = items[cur];
      setText("#current-file", it.title);
      setText("#position", T("label.js.position", { i: (DATA.offset || 0) + cur + 1, n: DATA.total || items.length }));
      if (history.replaceState) { history.replaceState(null, "", "#item-" + cur); }  // a reload comes back here
      if (DATA.kind === "table") {
        var body = $("#current-row tbody");
        body.innerHTML = "";
        (DATA.cell_names || []).forEach(function (c, k) {
          var tr = document.createElement("tr"), th = document.createElement("th"), td = document.createElement("td");
          th.textContent = c; td.textContent = (it.cells || [])[k] || "";
          tr.appendChild(th); tr.appendChild(td); body.appendChild(tr);
        });
      } else {
        img.src = DATA.base + "/thumb/" + it.idx + ".png" + (img.getAttribute("data-size") ? "?size=large" : "");
        if (!audio) { /* images and series: a picture only */ }
        else if (it.audio) { audio.hidden = false; audio.src = DATA.base + "/audio/" + it.idx; if (play) { audio.play().catch(function () {}); } }
        else { audio.hidden = true; audio.removeAttribute("src"); }
      }
      markButtons();
      showSuggestion();
    };
    var setRow = function (j, label) {
      var counter = $("#n-unlabelled");
      if (counter && (items[j].label === null) !== (label === null)) {  // the filter chip's count follows
        counter.textContent = String(Math.max(0, Number(counter.textContent) + (label === null ? 1 : -1)));
      }
      items[j].label = label;
      rows[j].classList.toggle("labelled", label !== null);
      var chip = $("[data-label]", rows[j]);
      setText(chip, label !== null ? label : T("label.js.unlabelled"));
      paint(chip, label);
      if (items[j].suggest === label) { setText($("[data-suggest]", rows[j]), ""); }
      rows[j].classList.add("flash");
      setTimeout(function () { rows[j].classList.remove("flash"); }, 300);
    };
    // Saves go one after the other: fast key presses on a slow server kept arriving out of order, so a label and
    // its undo could be applied the wrong way round and the saved count went back (it showed 9 of 10 labels).
    var saveQueue = Promise.resolve();
    var saveMany = function (js, label) {
      var send = function () {
        return js.length === 1
          ? post(DATA.post, { item: items[js[0]].id, label: label === null ? "" : label })
          : post(DATA.bulk, { items: js.map(function (j) { return items[j].id; }).join("\n"), label: label === null ? "" : label, column: DATA.column || "" });
      };
      var req = saveQueue.then(send, send);
      saveQueue = req.catch(function () {});
      return req.then(function (r) { setText("#saved-count", String(r.saved)); scheduleAssist(); })
        .catch(function (err) { toast(T("label.js.save_failed", { error: err.message }), true); throw err; });
    };
    var assign = function (label) {
      var picked = selIdx();
      if (picked.length) {  // bulk: the selection gets the label
        var before = picked.map(function (j) { return { j: j, label: items[j].label }; });
        picked.forEach(function (j) { setRow(j, label); });
        undo.push(before);
        saveMany(picked, label).then(function () { toast(T("label.js.bulk_saved", { n: picked.length, label: label })); })
          .catch(function () { before.forEach(function (b) { setRow(b.j, b.label); }); undo.pop(); });
        selected = {}; drawSelection(); markButtons();
        return;
      }
      var j = cur, prev = items[j].label;
      setRow(j, label);
      undo.push([{ j: j, label: prev }]);
      saveMany([j], label).then(function () { toast(T("label.js.saved", { label: label })); })
        .catch(function () { setRow(j, prev); undo.pop(); });
      if (j < items.length - 1) { show(j + 1, false); } else { markButtons(); }
    };
    var undoLast = function () {
      var u = undo.pop();
      if (!u) { toast(T("label.js.nothing_to_undo")); return; }
      var groups = {};
      u.forEach(function (b) { setRow(b.j, b.label); var k = b.label === null ? "\u0000" : b.label; (groups[k] = groups[k] || []).push(b.j); });
      show(u[0].j, false);
      Object.keys(groups).forEach(function (k) {
        saveMany(groups[k], k === "\u0000" ? null : k).then(function () { toast(T("label.js.undone")); }).catch(function () {});
      });
    };
    rows.forEach(function (r, j) {
      r.addEventListener("click", function (e) {
        if (e.shiftKey && anchor !== null) {  // a range
          var lo = Math.min(anchor, j), hi = Math.max(anchor, j);
          for (var k = lo; k <= hi; k++) { toggle(k, true); }
          drawSelection();
        } else if (e.ctrlKey || e.metaKey || (e.target && e.target.classList.contains("pick"))) {
          toggle(j, !selected[j]); anchor = j; drawSelection();
        } else { anchor = j; }
        show(j, false); list.focus({ preventScroll: true });
        // phones: the picture and the label buttons are below the list; bring them to the finger
        var viewer = $("#labeler .current");
        if (viewer && window.matchMedia && window.matchMedia("(max-width: 600px)").matches) {
          viewer.scrollIntoView({ block: "start" });
        }
      });
    });
    var selPage = $("#select-page");
    if (selPage) {
      selPage.addEventListener("change", function () {
        rows.forEach(function (r, j) { toggle(j, selPage.checked); });
        drawSelection();
      });
    }
    var clr = $("#select-clear");
    if (clr) { clr.addEventListener("click", function () { selected = {}; if (selPage) { selPage.checked = false; } drawSelection(); }); }
    $all(".label-btn").forEach(function (b) {
      b.style.setProperty("--label-color", b.getAttribute("data-color"));
      b.addEventListener("click", function () { assign(b.getAttribute("data-label")); });
    });
    rows.forEach(function (r, j) { paint($("[data-label]", r), items[j].label); });
    var newForm = $("#new-label");
    if (newForm) {
      newForm.addEventListener("submit", function (e) {
        e.preventDefault();
        var inp = $("#new-label-name");
        var v = inp.value.trim();
        var color = ($("#new-label-color") || {}).value || "";
        inp.value = "";
        list.focus();
        if (!v) { return; }
        post(DATA.defs_url, { name: v, color: color, column: DATA.column || "" }).then(function (r) {
          defs = r.defs; labels = defs.map(function (d) { return d.name; });
          drawButtons();
          rows.forEach(function (row, j) { paint($("[data-label]", row), items[j].label); });
          toast(T("label.js.label_added", { label: v }));
        }).catch(function (err) { toast(T("label.js.save_failed", { error: err.message }), true); });
      });
    }
    var colSel = $("#label-column");
    if (colSel) { colSel.addEventListener("change", function () { $("#column-form").submit(); }); }

    /* the assistant: suggestions with confidence, and the learning curve */
    var drawCurve = function (curve) {
      var svg = $("#learning-curve");
      if (!svg) { return; }
      while (svg.firstChild) { svg.removeChild(svg.firstChild); }
      if (!curve || curve.length < 1) { svg.classList.add("empty"); return; }
      svg.classList.remove("empty");
      var NS = "http://www.w3.org/2000/svg", W = 300, H = 90, pad = 18;
      var maxN = Math.max.apply(null, curve.map(function (p) { return p.n; })), minN = Math.min.apply(null, curve.map(function (p) { return p.n; }));
      var x = function (n) { return pad + (maxN === minN ? (W - 2 * pad) / 2 : (n - minN) / (maxN - minN) * (W - 2 * pad)); };
      var y = function (a) { return H - pad - a * (H - 2 * pad); };
      var mk = function (tag, attrs) { var el = document.createElementNS(NS, tag); Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); }); svg.appendChild(el); return el; };
      mk("line", { x1: pad, y1: y(0), x2: W - pad, y2: y(0), "class": "axis" });
      mk("line", { x1: pad, y1: y(1), x2: W - pad, y2: y(1), "class": "grid-line" });
      mk("polyline", { points: curve.map(function (p) { return x(p.n) + "," + y(p.accuracy); }).join(" "), "class": "curve-line" });
      curve.forEach(function (p) { mk("circle", { cx: x(p.n), cy: y(p.accuracy), r: 2.5, "class": "curve-dot" }); });
      var lab = function (tx, ty, text, anchor) { var t = mk("text", { x: tx, y: ty, "text-anchor": anchor || "start" }); t.textContent = text; };
      lab(2, y(1) + 4, "100%"); lab(2, y(0) + 4, "0%");
      lab(pad, H - 2, String(minN)); lab(W - pad, H - 2, String(maxN), "end");
    };
    var assistTimer = null, assisting = false;
    var loadAssist = function () {
      if (assisting || !DATA.assist) { return; }
      assisting = true;
      fetch(DATA.assist, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (res) {
          assisting = false;
          if (!res.ready) {
            setText("#assist-status", T("label.js.assist_need", { need: res.need, n: res.n_labelled }));
          } else if (res.cv_accuracy !== null && res.cv_accuracy !== undefined) {
            setText("#assist-status", T("label.js.assist_ready", { n: res.n_labelled, acc: fmt(100 * res.cv_accuracy, 0) }));
          } else {
            setText("#assist-status", T("label.js.assist_ready_nocv", { n: res.n_labelled }));
          }
          drawCurve(res.curve);
          items.forEach(function (it, j) {
            var sg = (res.suggestions || {})[it.id];
            var el = $("[data-suggest]", rows[j]);
            if (sg) {
              it.suggest = sg[0]; it.confidence = sg[1];
              setText(el, it.label === sg[0] ? "" : "→ " + sg[0] + " " + fmt(100 * sg[1], 0) + "%");
              paint(el, sg[0]);
            } else { it.suggest = null; setText(el, ""); }
          });
          showSuggestion();
        }).catch(function () { assisting = false; });
    };
    var scheduleAssist = function () { clearTimeout(assistTimer); assistTimer = setTimeout(loadAssist, 1500); };

    document.addEventListener("keydown", function (e) {
      var tag = (e.target && e.target.tagName) || "";
      var box = tag === "INPUT" && /^(checkbox|radio|button)$/.test(e.target.type || "");  // keys still label
      if ((tag === "INPUT" && !box) || tag === "SELECT" || tag === "TEXTAREA" || e.ctrlKey || e.metaKey || e.altKey) { return; }
      if (/^[1-9]$/.test(e.key)) {
        var lab = labels[Number(e.key) - 1];
        if (lab !== undefined) { e.preventDefault(); assign(lab); }
      } else if (e.key === "ArrowDown" || e.key === "ArrowRight" || e.key === "j") {
        e.preventDefault(); show(cur + 1, false);
      } else if (e.key === "ArrowUp" || e.key === "ArrowLeft" || e.key === "k") {
        e.preventDefault(); show(cur - 1, false);
      } else if (e.key === " ") {
        e.preventDefault();
        if (audio && !audio.hidden) { if (audio.paused) { audio.play().catch(function () {}); } else { audio.pause(); } }
      } else if (e.key === "u" || e.key === "U") {
        e.preventDefault(); undoLast();
      } else if (e.key === "x" || e.key === "X") {
        e.preventDefault(); toggle(cur, !selected[cur]); anchor = cur; drawSelection();
      } else if (e.key === "Enter" && items[cur] && items[cur].suggest) {
        e.preventDefault(); assign(items[cur].suggest);
      } else if (e.key === "Escape") {
        selected = {}; drawSelection();
      }
    });
    drawSelection();
    var at = /^#item-(\d+)$/.exec(location.hash || "");
    show(at ? Number(at[1]) : 0, false);
    list.focus({ preventScroll: true });  // keys work at once; the page stays at its top (phones: the picture)
    loadAssist();
  }
})();
