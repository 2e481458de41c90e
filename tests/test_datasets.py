"""Importing tables: formats, encodings, kinds, idempotence, and every bad input."""

import os

import numpy as np
import pandas as pd
import pytest

from modelfab.errors import InvalidInput, TooLarge, UnsupportedFormat, WorkspaceError
from modelfab.workspace import Workspace


def _state(ws):
    """Everything an import could leave behind: rows and blobs."""
    return (len(ws.meta.list_datasets()), sorted(ws.blobs.iter_ids()))


def test_csv_import_infers_kinds_and_is_idempotent(ws, factory_csv):
    res = ws.import_table(factory_csv, name="factory")
    assert res.created
    ds = res.dataset
    assert (ds.name, ds.version, ds.n_rows, ds.n_cols) == ("factory", 1, 1500, 13)
    kinds = ds.column_kinds()
    assert kinds["part_id"] == "id"
    assert kinds["timestamp"] == "datetime"
    assert kinds["line"] == "categorical"
    assert kinds["temperature_c"] == "numeric"
    assert kinds["quality"] == "categorical"
    assert ds.stats["humidity_pct"]["missing"] > 0
    assert set(ds.stats["quality"]["counts"]) == {"ok", "defect"}
    before = _state(ws)
    again = ws.import_table(factory_csv, name="factory")
    assert not again.created and again.dataset.version == 1
    assert _state(ws) == before
    df = ws.load_frame("factory:1")
    assert len(df) == 1500 and list(df.columns)[0] == "part_id"


def test_changed_content_makes_a_new_version(ws, tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b\n1,x\n2,y\n")
    assert ws.import_table(p, name="t").dataset.version == 1
    p.write_text("a,b\n1,x\n2,y\n3,z\n")
    assert ws.import_table(p, name="t").dataset.version == 2
    assert ws.dataset("t:1").n_rows == 2 and ws.dataset("t").n_rows == 3


def test_gbk_chinese_semicolon_and_bool_columns(ws, tmp_path):
    p = tmp_path / "gbk.csv"
    rows = ["批次;温度;合格;备注"] + [f"B{i};{20 + i % 7}.5;{'是' if i % 3 else '否'};第{i}号 样品 表面 划痕 检查" for i in range(60)]
    p.write_bytes("\n".join(rows).encode("gbk"))
    ds = ws.import_table(p, name="gbk").dataset
    assert ds.schema["encoding"] == "gb18030"
    assert ds.schema["delimiter"] == ";"
    kinds = ds.column_kinds()
    assert kinds["温度"] == "numeric"
    assert kinds["合格"] == "boolean"
    df = ws.load_frame("gbk")
    assert df["批次"].iloc[0] == "B0"


def test_tsv_with_bom_and_latin1(ws, tmp_path):
    p = tmp_path / "x.tsv"
    p.write_bytes(b"\xef\xbb\xbfcol\tval\n" + b"".join(f"a{i}\t{i}\n".encode() for i in range(20)))
    ds = ws.import_table(p).dataset
    assert [c["name"] for c in ds.schema["columns"]] == ["col", "val"]
    q = tmp_path / "l1.csv"
    q.write_bytes("name,city\n".encode() + "".join(f"n{i},Málaga Zürich café\n" for i in range(30)).encode("latin-1"))
    df = ws.load_frame(ws.import_table(q).dataset)
    assert df["city"].iloc[0] == "Málaga Zürich café"


def test_parquet_and_excel(ws, tmp_path):
    df = pd.DataFrame({"x": np.arange(30.0) * 1.5 + 0.25, "y": ["a", "b", "c"] * 10, "ok": [True, False] * 15})
    df.to_parquet(tmp_path / "d.parquet")
    ds = ws.import_table(tmp_path / "d.parquet").dataset
    assert ds.column_kinds() == {"x": "numeric", "y": "categorical", "ok": "boolean"}
    df.to_excel(tmp_path / "d.xlsx", index=False)
    ds2 = ws.import_table(tmp_path / "d.xlsx").dataset
    assert ds2.n_rows == 30 and ds2.column_kinds()["x"] == "numeric"


def test_excel_reads_the_sheet_with_the_data_and_says_so(ws, tmp_path):
    from tests.conftest import cli_json, run_cli

    book = tmp_path / "book.xlsx"
    data = pd.DataFrame({"x": np.arange(40.0), "y": ["a", "b"] * 20})
    with pd.ExcelWriter(book) as xw:
        pd.DataFrame({"About": ["Line 3 export", "2026-12-04"]}).to_excel(xw, sheet_name="Cover", index=False)
        data.to_excel(xw, sheet_name="Data", index=False)
    res = ws.import_table(book, name="book")
    assert res.dataset.n_rows == 40 and res.dataset.schema["sheet"] == "Data"
    assert "'Data'" in res.notes[0] and "--sheet" in res.notes[0]
    cover = ws.import_table(book, name="book", sheet="Cover")  # another sheet of the same file: another version
    assert cover.created and cover.dataset.n_rows == 2 and cover.dataset.version == 2
    assert not ws.import_table(book, name="book").created
    with pytest.raises(InvalidInput, match="no sheet 'Dta'.*'Cover', 'Data'"):
        ws.import_table(book, name="book", sheet="Dta")
    root = str(ws.root)
    out = cli_json("data", "import", str(book), "--name", "cli", "-w", root)
    assert any("'Data'" in n for n in out["notes"])
    bad = run_cli("data", "import", str(tmp_path), "--sheet", "Data", "-w", root, check=False)
    assert bad.returncode == 2 and "--sheet" in bad.stderr


BAD_CSV = {
    "empty": (b"", InvalidInput, "empty"),
    "whitespace": (b"   \n\n", InvalidInput, "empty"),
    "header_only": (b"a,b,c\n", InvalidInput, "no data rows"),
    "ragged": (b"a,b\n1,2\n3,4,5,6\n", InvalidInput, r"ragged rows: Expected 2 fields in line 3, saw 4"),  # no "C error"
    "duplicate_columns": (b"a,b,a\n1,2,3\n", InvalidInput, "duplicate column"),
    "binary_garbage": (bytes(range(256)) * 40, InvalidInput, "encoding|parse|decode"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSV))
def test_bad_csv_gets_clear_error_and_nothing_written(ws, tmp_path, case):
    data, exc, pattern = BAD_CSV[case]
    p = tmp_path / f"{case}.csv"
    p.write_bytes(data)
    before = _state(ws)
    with pytest.raises(exc, match=pattern) as info:
        ws.import_table(p, name="bad")
    assert p.name in str(info.value) or "bad" in str(info.value)
    assert _state(ws) == before


def test_a_series_file_given_as_a_table_is_named(ws, tmp_path):
    p = tmp_path / "Shapes_TEST.ts"
    p.write_text("@problemName x\n@data\n1,2,3:a\n")
    with pytest.raises(UnsupportedFormat, match=r"got a \.ts file of time series"):
        ws.import_table(p, name="ts")


def test_too_many_columns_refused_before_loading(ws, tmp_path):
    p = tmp_path / "wide.csv"
    header = ",".join(f"c{i}" for i in range(100_000))
    p.write_text(header + "\n" + ",".join("1" for _ in range(100_000)) + "\n")
    before = _state(ws)
    with pytest.raises(TooLarge, match="100,000 columns"):
        ws.import_table(p, name="wide")
    assert _state(ws) == before


def test_huge_file_refused_without_reading_it(ws, tmp_path):
    p = tmp_path / "huge.csv"
    with open(p, "wb") as fh:  # a sparse 2 GB file: refused by size, never loaded
        fh.write(b"a,b\n1,2\n")
        fh.truncate(2 * 1024**3)
    before = _state(ws)
    with pytest.raises(TooLarge, match="import limit"):
        ws.import_table(p, name="huge")
    assert _state(ws) == before


def test_parquet_that_is_really_csv(ws, tmp_path):
    p = tmp_path / "fake.parquet"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(UnsupportedFormat, match="Parquet"):
        ws.import_table(p, name="fake")
    q = tmp_path / "trunc.parquet"
    df = pd.DataFrame({"a": range(100)})
    df.to_parquet(q)
    q.write_bytes(q.read_bytes()[:-20])
    with pytest.raises(UnsupportedFormat, match="not a valid Parquet"):
        ws.import_table(q, name="trunc")


def test_missing_file_folder_and_bad_name(ws, tmp_path):
    with pytest.raises(InvalidInput, match="not found"):
        ws.import_table(tmp_path / "nope.csv")
    with pytest.raises(InvalidInput, match="folder"):
        ws.import_table(tmp_path)
    p = tmp_path / "ok.csv"
    p.write_text("a\n1\n")
    with pytest.raises(InvalidInput, match="name"):
        ws.import_table(p, name="../evil")


def test_workspace_path_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(WorkspaceError, match="is a file"):
        Workspace.init(f)
    with pytest.raises(WorkspaceError, match="is a file"):
        Workspace.open(f)
    with pytest.raises(WorkspaceError, match="No modelfab workspace"):
        Workspace.open(tmp_path)


def test_every_row_points_at_existing_blobs(ws, factory_csv):
    ws.import_table(factory_csv, name="a")
    for sha in ws.meta.referenced_blobs():
        assert ws.blobs.exists(sha)
    assert not any((ws.blobs.root / ".tmp").iterdir()) if (ws.blobs.root / ".tmp").exists() else True
    assert os.listdir(ws.tmp_dir) == []


def _tickets(n: int = 30) -> pd.DataFrame:
    return pd.DataFrame({"工单号": [f"WO{i:04d}" for i in range(n)], "车间": ["一车间", "二车间", "三车间"] * (n // 3),
                         "设备": ["CNC-1", "CNC-2"] * (n // 2), "运行小时": np.arange(n) * 1.5,
                         "故障描述": [f"电机跳闸 第{i}次" for i in range(n)],
                         "故障类别": (["电气故障", "机械磨损"] * n)[:n]})


def test_title_rows_above_the_header_are_found_and_left_out(ws, tmp_path):
    """Exports from plant systems start with a title block; the header is the first row that spans the table.
    Excel: a block of rows merged in one column takes its value in every row; a total under the data is left out."""
    import openpyxl

    df = _tickets()
    csv = tmp_path / "titled.csv"
    with open(csv, "w", encoding="gbk", newline="") as f:
        f.write("设备维修工单导出\n导出时间: 2025-01-02,,\n\n")
        df.to_csv(f, index=False)
    res = ws.import_table(csv)
    got = ws.load_frame(res.dataset)
    assert list(got.columns) == list(df.columns) and len(got) == 30
    assert any("the header was read from row 4" in n for n in res.notes), res.notes
    # the header named explicitly reads the file another way (another version)
    explicit = ws.import_table(csv, header_row=4)
    assert explicit.created and list(ws.load_frame(explicit.dataset).columns) == list(df.columns)
    with pytest.raises(InvalidInput, match="--header-row 3 is empty"):
        ws.import_table(csv, header_row=3)

    book = tmp_path / "title_merged.xlsx"
    wb = openpyxl.Workbook()
    sh = wb.active
    sh.append(["XX汽车零部件有限公司 设备维修工单汇总表"])
    sh.merge_cells("A1:F1")
    sh.append(["制表: 张三", None, None, "2025年1月"])
    sh.append([])
    sh.append(list(df.columns))
    for i, row in enumerate(df.itertuples(index=False)):
        sh.append([None if i % 3 and k == 1 else v for k, v in enumerate(row)])  # 车间 written once per 3 rows
    for start in range(5, 5 + 30, 3):
        sh.merge_cells(start_row=start, start_column=2, end_row=start + 2, end_column=2)
    sh.append(["合计", "30条"])
    wb.save(book)
    res = ws.import_table(book)
    got = ws.load_frame(res.dataset)
    assert list(got.columns) == list(df.columns) and len(got) == 30, (got.tail(), res.notes)
    assert got["车间"].tolist() == [df["车间"].iloc[i - i % 3] for i in range(30)]
    assert got["运行小时"].dtype.kind == "f" and got["工单号"].iloc[-1] == "WO0029"
    joined = " ".join(res.notes)
    assert "header was read from row 4" in joined and "merged" in joined and "row 35" in joined


def test_cells_of_spaces_are_empty_not_a_class(ws, tmp_path):
    df = _tickets()
    df.loc[[3, 7, 11], "故障类别"] = "  "
    df.to_csv(tmp_path / "edge.csv", index=False)
    ds = ws.import_table(tmp_path / "edge.csv").dataset
    got = ws.load_frame(ds)
    assert got["故障类别"].isna().sum() == 3 and set(got["故障类别"].dropna()) == {"电气故障", "机械磨损"}


@pytest.mark.parametrize("text,first_column", [
    ("a,b\n1,2\n3,4\n", "a"),                        # too narrow to tell a title from a header
    ("Report\n\nx,y,z,w\n1,2,3,4\n5,6,7,8\n", "x"),  # one title line
])
def test_the_header_row_is_only_moved_under_a_title(ws, tmp_path, text, first_column):
    p = tmp_path / "t.csv"
    p.write_text(text)
    assert ws.load_frame(ws.import_table(p).dataset).columns[0] == first_column


def test_a_sparse_header_over_rows_of_numbers_stays_the_header():
    from modelfab.modalities.tabular_io import find_header_row

    assert find_header_row([["a", "", "", "", "b"], [1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]) == 0
    assert find_header_row([["title", "", "", ""], ["x", "y", "z", "w"], [1, 2, 3, 4]]) == 1


def test_a_password_protected_workbook_is_said_so(ws, tmp_path):
    """Excel's encryption wraps the .xlsx in an OLE container (D0 CF 11 E0): it said "expected a zip archive"."""
    p = tmp_path / "locked.xlsx"
    p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 4096)
    with pytest.raises(UnsupportedFormat, match="password-protected") as err:
        ws.import_table(p)
    assert "remove the password" in err.value.hint


def test_several_empty_column_names_are_named_not_refused(ws, tmp_path):
    """Two empty header cells were refused as "duplicate column names ''" (one was named column_2)."""
    p = tmp_path / "sparse.csv"
    p.write_text("temp,,line,,wear,quality\n1,2,L1,3,0.5,ok\n2,3,L2,4,0.7,bad\n")
    cols = list(ws.load_frame(ws.import_table(p).dataset).columns)
    assert cols == ["temp", "column_2", "line", "column_4", "wear", "quality"]
    p.write_text("a,b,a\n1,2,3\n")
    with pytest.raises(InvalidInput, match="duplicate column names 'a'"):
        ws.import_table(p, name="dup")
