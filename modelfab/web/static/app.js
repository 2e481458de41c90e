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
      xhr.upload.onprogress = function (ev) { if (ev.lengthComputable) { bar.value = ev.loaded / ev.total; } };
      xhr.onload = function () {
        var j = {};
        try { j = JSON.parse(xhr.responseText); } catch (x) { j = {}; }
        if (xhr.status >= 200 && xhr.status < 300 && j.url) { window.location = j.url; return; }
        button.disabled = false;
        bar.hidden = true;
        err.hidden = false;
        err.textContent = (j.error && (j.error.detail || j.error.message)) || T("common.js.upload_failed", { status: xhr.status });
      };
      xhr.onerror = function () {
        button.disabled = false; bar.hidden = true; err.hidden = false; err.textContent = T("common.js.network");
      };
      xhr.send(new FormData(form));
    });
  });

  /* -- train page --------------------------------------------------------------------------- */
  var trainForm = $("#train-form");
  if (trainForm && DATA.datasets) {
    var dsSel = $("#train-dataset"), target = $("#train-target"), task = $("#train-task");
    var nameInput = $("#train-name"), suggestion = $("#train-suggestion");
    var updateTrain = function () {
      var info = DATA.datasets[dsSel.value] || {};
      var kind = info.kind || "table";
      $all("[data-for]", trainForm).forEach(function (el) {
        var show = el.getAttribute("data-for") === kind;
        el.hidden = !show;
        if (el.tagName === "OPTION") { el.disabled = !show; }
      });
      if (task.selectedOptions[0] && task.selectedOptions[0].disabled) { task.value = "auto"; }
      nameInput.placeholder = info.name || "";
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
    target.addEventListener("change", suggestTable);
    updateTrain();
  }

  /* -- job page: live progress over server-sent events ------------------------------------ */
  if (DATA.job && DATA.events) {
    var terminal = ["done", "failed", "cancelled"];
    var startedTerminal = terminal.indexOf(DATA.job.state) >= 0;
    var renderJob = function (job) {
      var live = job.live || {};
      var prog = $("#job-progress");
      if (prog) { prog.value = job.state === "done" ? 1 : job.progress; }
      if (live.elapsed_s !== undefined) { setText("#live-elapsed", T("job.js.seconds", { n: fmt(live.elapsed_s, 0) })); }
      if (live.left_s !== undefined) { setText("#live-left", T("job.js.seconds", { n: fmt(live.left_s, 0) })); }
      if (live.trials !== undefined) { setText("#live-trials", String(live.trials)); }
      if (live.files_total !== undefined) { setText("#live-trials", live.files_done + " / " + live.files_total); }
      if (live.best_score !== undefined && live.best_score !== null) {
        setText("#live-best", fmt(live.best_score, 4) + (live.metric ? " (" + live.metric + ")" : "") + (live.best_learner ? " · " + live.best_learner : ""));
      }
      var msgKey = "job.js.msg_" + String(job.message || "").replace(/[^a-z]+/gi, "_").toLowerCase();
      setText("#live-message", Object.prototype.hasOwnProperty.call(MSG, msgKey) ? T(msgKey) : (job.message || ""));
      var badge = $("#job-state .badge");
      if (badge) { badge.className = "badge state-" + job.state; badge.textContent = T("job.js.state_" + job.state); }
      if (job.error) { var e = $("#job-error"); e.hidden = false; e.textContent = job.error; }
      var cancel = $("#cancel-form");
      if (cancel && job.state !== "running" && job.state !== "queued") { cancel.hidden = true; }
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
  var slider = $("#threshold-slider");
  if (slider && DATA.holdout) {
    var h = DATA.holdout;
    var normal = [], abnormal = [];
    h.scores.forEach(function (s, i) { (h.y_true[i] ? abnormal : normal).push(s); });
    var uniq = h.scores.slice().sort(function (a, b) { return a - b; })
      .filter(function (v, i, a) { return i === 0 || v !== a[i - 1]; });
    // candidate thresholds: below all, between neighbours, and the current one
    var cands = [uniq[0] - Math.max(1e-9, Math.abs(uniq[0]) * 0.01)];
    for (var i = 0; i + 1 < uniq.length; i++) { cands.push((uniq[i] + uniq[i + 1]) / 2); }
    cands.push(uniq[uniq.length - 1]);
    cands.push(h.threshold);
    cands.sort(function (a, b) { return a - b; });
    cands = cands.filter(function (v, i, a) { return i === 0 || v !== a[i - 1]; });
    slider.min = 0; slider.max = cands.length - 1; slider.step = 1;
    slider.value = cands.indexOf(h.threshold);
    var input = $("#threshold-input"), save = $("#threshold-save");
    var updateThr = function () {
      var thr = cands[Number(slider.value)];
      var fa = normal.filter(function (s) { return s > thr; }).length;
      var miss = abnormal.filter(function (s) { return s <= thr; }).length;
      setText("#fa-count", String(fa));
      setText("#miss-count", String(miss));
      setText("#fa-text", T("model.js.fa", { n: fa, total: normal.length, pct: normal.length ? fmt(100 * fa / normal.length, 1) : "–" }));
      setText("#miss-text", abnormal.length
        ? T("model.js.miss", { n: miss, total: abnormal.length, pct: fmt(100 * miss / abnormal.length, 1) })
        : T("model.js.no_abnormal"));
      setText("#thr-value", fmt(thr, 4));
      if (input) { input.value = String(thr); }
      if (save) { save.disabled = thr === h.threshold; }
    };
    slider.addEventListener("input", updateThr);
    updateThr();
  }

  /* -- labelling: keyboard first ------------------------------------------------------------- */
  var list = $("#items");
  if (list && DATA.items) {
    var items = DATA.items, labels = (DATA.labels || []).slice(), cur = 0, undo = [];
    var rows = $all("li", list);
    var audio = $("#current-audio"), img = $("#current-thumb");
    var drawButtons = function () {
      var box = $("#label-buttons");
      box.innerHTML = "";
      labels.slice(0, 9).forEach(function (lab, i) {
        var b = document.createElement("button");
        b.type = "button"; b.className = "btn label-btn"; b.setAttribute("data-label", lab);
        var k = document.createElement("kbd"); k.textContent = String(i + 1);
        b.appendChild(k); b.appendChild(document.createTextNode(" " + lab));
        b.addEventListener("click", function () { assign(lab); });
        box.appendChild(b);
      });
      markButtons();
    };
    var markButtons = function () {
      $all(".label-btn").forEach(function (b) { b.classList.toggle("on", b.getAttribute("data-label") === items[cur].label); });
    };
    var show = function (i, play) {
      if (!items.length) { return; }
      cur = Math.max(0, Math.min(items.length - 1, i));
      rows.forEach(function (r, j) { r.classList.toggle("cur", j === cur); });
      rows[cur].scrollIntoView({ block: "nearest" });
      var it = items[cur];
      setText("#current-file", it.file);
      setText("#position", T("label.js.position", { i: cur + 1, n: items.length }));
      img.src = DATA.base + "/thumb/" + it.idx + ".png";
      if (it.audio) { audio.hidden = false; audio.src = DATA.base + "/audio/" + it.idx; if (play) { audio.play().catch(function () {}); } }
      else { audio.hidden = true; audio.removeAttribute("src"); }
      markButtons();
    };
    var setRow = function (j, label) {
      items[j].label = label;
      rows[j].classList.toggle("labelled", label !== null);
      setText($("[data-label]", rows[j]), label !== null ? label : T("label.js.unlabelled"));
      rows[j].classList.add("flash");
      setTimeout(function () { rows[j].classList.remove("flash"); }, 300);
    };
    var save = function (j, label) {
      return post(DATA.post, { item: items[j].file, label: label === null ? "" : label }).then(function (r) {
        setText("#saved-count", String(r.saved));
      }).catch(function (err) { toast(T("label.js.save_failed", { error: err.message }), true); throw err; });
    };
    var assign = function (label) {
      var j = cur, before = items[j].label;
      setRow(j, label);
      undo.push({ j: j, label: before });
      save(j, label).then(function () { toast(T("label.js.saved", { label: label })); })
        .catch(function () { setRow(j, before); undo.pop(); });
      if (j < items.length - 1) { show(j + 1, false); } else { markButtons(); }
    };
    var undoLast = function () {
      var u = undo.pop();
      if (!u) { toast(T("label.js.nothing_to_undo")); return; }
      setRow(u.j, u.label);
      show(u.j, false);
      save(u.j, u.label).then(function () { toast(T("label.js.undone")); }).catch(function () {});
    };
    rows.forEach(function (r, j) { r.addEventListener("click", function () { show(j, false); list.focus(); }); });
    $all(".label-btn").forEach(function (b) { b.addEventListener("click", function () { assign(b.getAttribute("data-label")); }); });
    var newForm = $("#new-label");
    if (newForm) {
      newForm.addEventListener("submit", function (e) {
        e.preventDefault();
        var inp = $("#new-label-name");
        var v = inp.value.trim();
        if (v && labels.indexOf(v) < 0 && labels.length < 9) { labels.push(v); drawButtons(); }
        inp.value = "";
        list.focus();
      });
    }
    document.addEventListener("keydown", function (e) {
      var tag = (e.target && e.target.tagName) || "";
      if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || e.ctrlKey || e.metaKey || e.altKey) { return; }
      if (/^[1-9]$/.test(e.key)) {
        var lab = labels[Number(e.key) - 1];
        if (lab !== undefined) { e.preventDefault(); assign(lab); }
      } else if (e.key === "ArrowDown" || e.key === "ArrowRight" || e.key === "j") {
        e.preventDefault(); show(cur + 1, false);
      } else if (e.key === "ArrowUp" || e.key === "ArrowLeft" || e.key === "k") {
        e.preventDefault(); show(cur - 1, false);
      } else if (e.key === " ") {
        e.preventDefault();
        if (!audio.hidden) { if (audio.paused) { audio.play().catch(function () {}); } else { audio.pause(); } }
      } else if (e.key === "u" || e.key === "U") {
        e.preventDefault(); undoLast();
      }
    });
    show(0, false);
    list.focus();
  }
})();
