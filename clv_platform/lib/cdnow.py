"""Import the CDNOW data set that ships inside `lifetimes` as landing files (docs/architecture.md mapping).

Sources (``lifetimes/datasets/``):

* ``CDNOW_master.txt``: header line, then ``customer_id date number_of_cds dollar_value``
  (69,659 records, 23,570 customers, 1997-01-01..1998-06-30).
* ``CDNOW_sample.txt``: the 1/10 sample, no header, ``master_id sample_id date number_of_cds dollar_value``
  (6,919 records, 2,357 customers). We keep the *master* id (5 digits, e.g. ``00004``) as customer_id, so the
  sample's customers carry the same ids as in the full data; the 4-digit sample id (0001..2357) is dropped.

Mapping: one landing line per CDNOW record, order_id ``CDNOW-<cust>-<yyyymmdd>-<n>`` (n = 1.. over that
customer's records of the day, in file order), line 1, ts 12:00:00, category ``music``, quantity = number of CDs
(min 1), unit_price = dollar_value / quantity to 6 decimals, channel ``web``, country ``US``.
The unit price is computed in integer micro-dollars, so round(quantity * unit_price, 2) == dollar_value exactly
(the rounding error is at most quantity * 0.5e-6 < 0.005). Every record is kept: the master file has 80
records with $0.00 (kept with unit_price 0) and none with 0 CDs (would become quantity 1).
One file per day over 1997-01-01..1998-06-30, header-only on days without records.
"""

import datetime as dt
import importlib.util
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from clv_platform.lib.schema import LANDING_COLUMNS

CDNOW_START = dt.date(1997, 1, 1)
CDNOW_END = dt.date(1998, 6, 30)
MASTER_FILE = "CDNOW_master.txt"
SAMPLE_FILE = "CDNOW_sample.txt"


@dataclass
class CdnowImportSummary:
    out_dir: str
    source: str
    records: int
    customers: int
    files: int
    empty_days: int
    start: str
    end: str
    total_dollars: str
    zero_dollar_records: int
    zero_cd_records: int
    same_day_extra_records: int  # records beyond the first of a customer on a day (merged by FHL's protocol)
    seconds: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CdnowRecord:
    customer_id: str   # 5-digit master id
    date: dt.date
    cds: int
    cents: int         # dollar_value in cents (exact)


def datasets_dir() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the lifetimes package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets"


def _cents(text: str) -> int:
    whole, _, frac = text.partition(".")
    if len(frac) > 2:
        raise ValueError(f"more than 2 decimals in dollar value {text!r}")
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole or "0")) * 100 + int((frac + "00")[:2]))


def read_records(sample: bool = False, path: Path | None = None) -> list[CdnowRecord]:
    """Parse CDNOW_master.txt (or the sample) into records, in file order."""
    path = path or datasets_dir() / (SAMPLE_FILE if sample else MASTER_FILE)
    records = []
    with open(path, encoding="ascii") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts or parts[0] == "customer_id":
                continue
            if sample:
                if len(parts) != 5:
                    raise ValueError(f"{path}:{lineno}: expected 5 fields, got {line!r}")
                cust, _sample_id, day, cds, dollars = parts
            else:
                if len(parts) != 4:
                    raise ValueError(f"{path}:{lineno}: expected 4 fields, got {line!r}")
                cust, day, cds, dollars = parts
            records.append(CdnowRecord(cust.zfill(5), dt.date(int(day[:4]), int(day[4:6]), int(day[6:8])),
                                       int(cds), _cents(dollars)))
    return records


def unit_price_text(cents: int, quantity: int) -> str:
    """dollars / quantity with 6 decimals (trailing zeros dropped), from integer cents: exact half-up rounding."""
    micro = (2 * cents * 10_000 + quantity) // (2 * quantity)
    whole, frac = divmod(micro, 1_000_000)
    frac_text = f"{frac:06d}".rstrip("0")
    return f"{whole}.{frac_text}" if frac_text else str(whole)


def import_cdnow(out_dir, sample: bool = False, progress: bool = False) -> CdnowImportSummary:
    """Write CDNOW as landing files transactions_YYYY-MM-DD.csv into out_dir (one per day, 1997-01-01..1998-06-30)."""
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    source = datasets_dir() / (SAMPLE_FILE if sample else MASTER_FILE)
    records = read_records(sample, source)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    by_day: dict[dt.date, list[str]] = defaultdict(list)
    seq: dict[tuple[str, dt.date], int] = defaultdict(int)
    zero_dollar = zero_cd = 0
    for rec in records:
        key = (rec.customer_id, rec.date)
        seq[key] += 1
        quantity = max(rec.cds, 1)
        zero_cd += rec.cds == 0
        zero_dollar += rec.cents == 0
        ymd = rec.date.strftime("%Y%m%d")
        by_day[rec.date].append(
            f"CDNOW-{rec.customer_id}-{ymd}-{seq[key]},1,{rec.customer_id},{rec.date.isoformat()}T12:00:00,"
            f"music,{quantity},{unit_price_text(rec.cents, quantity)},web,US,\n"
        )
    if records and (min(by_day) < CDNOW_START or max(by_day) > CDNOW_END):
        raise ValueError(f"CDNOW dates outside {CDNOW_START}..{CDNOW_END}")

    header = ",".join(LANDING_COLUMNS) + "\n"
    n_days = (CDNOW_END - CDNOW_START).days + 1
    empty = 0
    for i in tqdm(range(n_days), desc="writing CDNOW landing files", unit="file", disable=not progress):
        day = CDNOW_START + dt.timedelta(days=i)
        lines = by_day.get(day, [])
        empty += not lines
        with open(out / f"transactions_{day.isoformat()}.csv", "w", encoding="utf-8", newline="") as f:
            f.write(header)
            f.writelines(lines)

    total = sum(r.cents for r in records)
    return CdnowImportSummary(
        out_dir=str(out), source=source.name, records=len(records),
        customers=len({r.customer_id for r in records}), files=n_days, empty_days=empty,
        start=CDNOW_START.isoformat(), end=CDNOW_END.isoformat(), total_dollars=f"{total // 100}.{total % 100:02d}",
        zero_dollar_records=zero_dollar, zero_cd_records=zero_cd,
        same_day_extra_records=sum(c - 1 for c in seq.values()), seconds=time.perf_counter() - t0,
    )
