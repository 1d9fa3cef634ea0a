"""A team's own vocabularies (channels, countries, categories): the TOML file, the settings that find it, and the
same allowed values at load (row rules), in the GX suite and in `clv validate`."""

from datetime import date, datetime

import pytest
from click.testing import CliRunner

from clv_platform.cli import cli
from clv_platform.lib import ingest, schema, validation, warehouse
from clv_platform.lib.settings import get_settings
from clv_platform_tests.lib.bad_inputs.cases import HEADER

DAY = "2024-03-10"
NOW = datetime(2024, 3, 12, 12, 0, 0)
ROWS = [  # lines 2..7
    f"O1,1,C1,{DAY}T09:00:00,books,2,12.5,web,US,",              # known everywhere
    f"O2,1,C2,{DAY}T10:00:00,garden,1,30,marketplace,AU,",        # all three outside the defaults
    f"O3,1,C3,{DAY}T11:00:00,garden,1,8,web,AU,",
    f"O4,1,C4,{DAY}T12:00:00,books,1,5,web,NZ,",                  # NZ is in no vocabulary below
    f"O5,1,C5,{DAY}T13:00:00,,1,5,web,US,",                       # blank category: never accepted
    f"O6,1,C6,{DAY}T14:00:00,books,1,5,kiosk,US,",
]


def _write(path, text):
    path.write_text(text)
    return path


@pytest.fixture
def landing(tmp_path):
    d = tmp_path / "landing"
    d.mkdir()
    _write(d / f"transactions_{DAY}.csv", "\n".join([HEADER, *ROWS]) + "\n")
    return d


def _rejected(con):
    return dict(con.execute("SELECT source_line, reasons FROM raw.rejected_transactions ORDER BY 1").fetchall())


def test_file_sets_lists_any_value_and_keeps_defaults_for_keys_left_out(tmp_path):
    vocab = schema.load_vocabularies(_write(tmp_path / "v.toml", 'countries = ["US", "AU", "US"]\ncategories = "*"\n'))
    assert vocab.countries == ("US", "AU")            # duplicates dropped, order kept
    assert vocab.categories is None                   # "*": any non-blank value
    assert vocab.channels == schema.CHANNELS
    assert vocab.source == str(tmp_path / "v.toml")
    assert vocab == schema.Vocabularies(countries=("US", "AU"), categories=None)   # compared by content
    assert schema.load_vocabularies(_write(tmp_path / "empty.toml", "")) == schema.DEFAULT_VOCABULARIES


@pytest.mark.parametrize("text, message", [
    ("countries = [", "not a readable TOML file"),
    ("country = ['US']", "unknown key(s) country; expected channels, countries, categories"),
    ("countries = 'US'", "countries must be a list of strings or \"*\", got 'US'"),
    ("countries = []", "countries is empty: every country would be rejected"),
    ("categories = ['books', ' toys']", "categories: ' toys' is not a usable value"),
    ("channels = ['web', 3]", "channels: 3 is not a usable value"),
])
def test_unusable_file_is_named_with_key_and_problem(tmp_path, text, message):
    path = _write(tmp_path / "vocabularies.toml", text)
    with pytest.raises(schema.VocabularyFileError) as err:
        schema.load_vocabularies(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)


def test_settings_find_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("CLV_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CLV_VOCABULARIES")
    assert get_settings().vocabularies() is schema.DEFAULT_VOCABULARIES      # no file: the defaults
    _write(tmp_path / "vocabularies.toml", 'countries = ["AU"]\n')
    assert get_settings().vocabularies().countries == ("AU",)               # data/vocabularies.toml
    monkeypatch.setenv("CLV_VOCABULARIES", str(tmp_path / "missing.toml"))  # a named file must exist
    with pytest.raises(schema.VocabularyFileError, match="vocabularies file not found"):
        get_settings().vocabularies()


def test_load_uses_the_vocabularies_and_counts_reconcile(tmp_path, landing):
    con = warehouse.connect(tmp_path / "w.duckdb")
    default = ingest.load_partition(con, DAY, landing, now=NOW)
    assert _rejected(con) == {3: "unknown_category,unknown_channel,unknown_country",
                              4: "unknown_category,unknown_country", 5: "unknown_country",
                              6: "unknown_category", 7: "unknown_channel"}
    assert (default.rows_read, default.rows_loaded, default.rows_rejected) == (6, 1, 5)

    own = schema.Vocabularies(channels=(*schema.CHANNELS, "marketplace"), countries=("US", "AU"),
                              categories=("books", "garden"))
    result = ingest.load_partition(con, DAY, landing, now=NOW, vocabularies=own)    # replaces the partition
    assert _rejected(con) == {5: "unknown_country", 6: "unknown_category", 7: "unknown_channel"}
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (6, 3, 3)

    anything = schema.Vocabularies(channels=None, countries=None, categories=None)
    result = ingest.load_partition(con, DAY, landing, now=NOW, vocabularies=anything)
    assert _rejected(con) == {6: "unknown_category"}                        # blank is still not a category
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (6, 5, 1)
    assert con.execute("SELECT count(*) FROM staging.transactions").fetchall() == [(5,)]

    # the GX suite checks the same vocabularies: passes with them, flags the rows the defaults do not allow
    day = date.fromisoformat(DAY)
    ok = validation.validate_partitions(con, [day], now=NOW, vocabularies=anything)
    assert all(o.success for o in ok.checks()["transactions_use_known_vocabularies"])
    strict = validation.validate_partitions(con, [day], now=NOW, vocabularies=schema.DEFAULT_VOCABULARIES)
    failing = {o.column: o.unexpected_count for o in strict.checks()["transactions_use_known_vocabularies"]
               if not o.success}
    assert failing == {"channel": 2, "country": 3, "category": 2}
    con.close()


def test_validate_cli_shows_the_vocabularies_and_the_values_to_add(tmp_path, landing, monkeypatch):
    monkeypatch.setenv("CLV_VOCABULARIES", str(_write(tmp_path / "v.toml", 'countries = ["US", "AU"]\n')))
    out = CliRunner().invoke(cli, ["validate", str(landing / f"transactions_{DAY}.csv")])
    assert out.exit_code == 1
    assert f"vocabularies: {tmp_path / 'v.toml'}" in out.output
    assert "country values not in the vocabulary: NZ (1)" in out.output
    assert "category values not in the vocabulary: garden (2), (empty) (1)" in out.output
    assert "channel values not in the vocabulary: kiosk (1), marketplace (1)" in out.output

    _write(tmp_path / "v.toml", "countries = []\n")
    out = CliRunner().invoke(cli, ["validate", str(landing / f"transactions_{DAY}.csv")])
    assert out.exit_code == 1 and "v.toml: countries is empty" in out.output


def test_validate_cli_on_a_folder_sums_up_every_file(tmp_path, landing):
    _write(landing / "transactions_2024-03-11.csv", HEADER + "\nO9,1,C9,2024-03-11T09:00:00,books,1,5,web,NZ,\n")
    _write(landing / "transactions_2024-03-12.csv", "not,a,header\n")
    _write(landing / "transactions_2024-03-13.csv.gz", "compressed: no partition loads it")
    _write(landing / "transactions_2024-03-14 (copy).csv", HEADER + "\n")
    out = CliRunner().invoke(cli, ["validate", str(landing)])
    assert out.exit_code == 1
    for name in ("transactions_2024-03-13.csv.gz", "transactions_2024-03-14 (copy).csv"):   # named, not passed over
        assert f"NOT LOADED {landing / name}: not a landing file name" in out.output
    assert "RESULT: 2 file(s) no partition loads" in out.output
    assert f"rows      {landing / 'transactions_2024-03-10.csv'}: 5 of 6 would be quarantined" in out.output
    assert f"REJECTED  {landing / 'transactions_2024-03-12.csv'}:" in out.output
    assert "files:     3 (1 rejected as a whole); vocabularies: " in out.output
    assert "rows:      7 read, 1 valid, 6 would be quarantined" in out.output
    assert "country values not in the vocabulary: AU (2), NZ (2)" in out.output
    _write(landing / "transactions_2024-02-30.csv", HEADER + "\n")     # an impossible date: refused, listed once
    out = CliRunner().invoke(cli, ["validate", str(landing)])
    assert out.output.count("transactions_2024-02-30.csv") == 1 and "RESULT: 2 file(s) no partition loads" in out.output
    (landing / "transactions_2024-02-30.csv").unlink()
    empty = tmp_path / "empty"
    empty.mkdir()
    out = CliRunner().invoke(cli, ["validate", str(empty)])
    assert out.exit_code == 1 and "no transactions_YYYY-MM-DD.csv|parquet files in this folder" in out.output
    _write(empty / f"transactions_{DAY}.csv", HEADER + "\nO1,1,C\u200b1,2024-03-10T09:00:00,books,1,5,web,US,\n"
           "O2,1,C\u00a02,2024-03-10T09:00:00,books,1,5,web,ZZ,\n")
    out = CliRunner().invoke(cli, ["validate", str(empty / f"transactions_{DAY}.csv")])
    # a zero-width space makes another customer that looks like C1: quarantined, and shown as an escape
    assert out.exit_code == 1 and "2: bad_id | O1,1,C\\u200b1," in out.output
    assert "O2,1,C\\xa02," in out.output          # a no-break space is not shown as a space
    _write(empty / f"transactions_{DAY}.csv", HEADER + '\nO1,1,C1,2024-03-10T09:00:00,"fa\r\nshion",1,5,web,US,\n')
    out = CliRunner().invoke(cli, ["validate", str(empty / f"transactions_{DAY}.csv")])
    assert "category values not in the vocabulary: fa\\x0d\\x0ashion (1)" in out.output
