"""The landing-file contract and the vocabularies the validation rules check against (built-in defaults below;
a team's own in a TOML file, see load_vocabularies and Settings.vocabularies)."""

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

# Header of every landing file, in this order (CSV) or these column names (Parquet).
LANDING_COLUMNS = (
    "order_id",           # e.g. O000000123; shared by the lines of one order
    "line_number",        # 1.. within the order
    "customer_id",        # e.g. C0000042
    "order_ts",           # ISO-8601 local timestamp, inside the file's day
    "category",           # product category
    "quantity",           # integer; negative on a return line
    "unit_price",         # > = 0, up to 6 decimals; line amount = quantity * unit_price
    "channel",            # one of CHANNELS
    "country",            # one of COUNTRIES (ISO 3166 alpha-2)
    "original_order_id",  # empty, except on return lines: the order being returned
)

LANDING_FILE_RE = re.compile(r"^transactions_(\d{4}-\d{2}-\d{2})\.(csv|parquet)$")

CHANNELS = ("web", "app", "store", "phone")
COUNTRIES = ("US", "GB", "DE", "FR", "NL", "ES", "IT", "SE", "PL", "CA")
CATEGORIES = ("books", "music", "electronics", "home", "fashion", "beauty", "toys", "sports", "grocery")

# --- vocabularies: the allowed values of channel, country and category ---------------------------------------

ANY_VALUE = "*"
VOCABULARY_COLUMNS = {"channels": "channel", "countries": "country", "categories": "category"}


@dataclass(frozen=True)
class Vocabularies:
    """Allowed values of channel, country and category, checked at load (reason codes unknown_channel,
    unknown_country, unknown_category) and again by the GX suite. None = any non-blank value. `source` says
    where they came from, for messages."""

    channels: tuple[str, ...] | None = CHANNELS
    countries: tuple[str, ...] | None = COUNTRIES
    categories: tuple[str, ...] | None = CATEGORIES
    source: str = field(default="built-in defaults", compare=False)

    def allowed(self, key: str) -> tuple[str, ...] | None:
        return getattr(self, key)


DEFAULT_VOCABULARIES = Vocabularies()


class VocabularyFileError(ValueError):
    """A vocabularies file that cannot be used; the message names the file, the key and what is wrong."""


def load_vocabularies(path: str | Path) -> Vocabularies:
    """Vocabularies from a TOML file with any of the keys channels, countries, categories, each a list of
    strings or "*" (any non-blank value); a key left out keeps its built-in default:

        countries = ["US", "GB", "AU"]
        categories = "*"
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VocabularyFileError(f"{path}: vocabularies file not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise VocabularyFileError(f"{path}: not a readable TOML file ({exc})") from None
    unknown = sorted(set(data) - set(VOCABULARY_COLUMNS))
    if unknown:
        raise VocabularyFileError(f"{path}: unknown key(s) {', '.join(unknown)}; expected "
                                  f"{', '.join(VOCABULARY_COLUMNS)}")
    values: dict[str, tuple[str, ...] | None] = {}
    for key, value in data.items():
        where = f"{path}: {key}"
        if value == ANY_VALUE:
            values[key] = None
            continue
        if not isinstance(value, list):
            raise VocabularyFileError(f'{where} must be a list of strings or "{ANY_VALUE}", got {value!r}')
        bad = [v for v in value if not isinstance(v, str) or not v.strip() or v != v.strip()]
        if bad:
            raise VocabularyFileError(f"{where}: {bad[0]!r} is not a usable value (non-blank strings without "
                                      "surrounding spaces only)")
        if not value:
            raise VocabularyFileError(f'{where} is empty: every {VOCABULARY_COLUMNS[key]} would be rejected '
                                      f'(use "{ANY_VALUE}" to accept any value)')
        values[key] = tuple(dict.fromkeys(value))
    return Vocabularies(**values, source=str(path))
