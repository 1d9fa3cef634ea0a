"""The bad-input corpus: landing files that break one rule each, with the exact outcome expected.

Row cases: a file of good rows plus one (or a few) bad rows; `rejected` maps the bad rows' source lines
(header = line 1) to their reason codes; every other row must reach staging.transactions.
File cases: bytes of a whole file (or a setup function); `error` is a fragment of the LandingFileError
message, which must also name the file; nothing may be written.
"""

from dataclasses import dataclass, field

DAY = "2024-03-10"
HEADER = "order_id,line_number,customer_id,order_ts,category,quantity,unit_price,channel,country,original_order_id"
GOOD = [  # lines 2..4 of every row case
    f"O1,1,C1,{DAY}T09:00:00,books,2,12.5,web,US,",
    f"O1,2,C1,{DAY}T09:00:00,music,1,3.333333,web,US,",
    f"O2,1,C2,{DAY}T10:30:00,toys,3,0,store,DE,",
]


def csv_text(*bad_rows: str, good=GOOD) -> str:
    return "\n".join([HEADER, *good, *bad_rows]) + "\n"


@dataclass
class RowCase:
    name: str
    bad_rows: list[str]
    rejected: dict[int, str]          # source_line -> reasons
    prior: list[str] = field(default_factory=list)   # rows of an earlier day's file, loaded first
    prior_day: str = "2024-03-09"


ROW_CASES = [
    RowCase("missing_customer_id", [f"O3,1,,{DAY}T11:00:00,books,1,5,web,US,"], {5: "missing_customer_id"}),
    RowCase("blank_customer_id", [f"O3,1,  ,{DAY}T11:00:00,books,1,5,web,US,"], {5: "missing_customer_id"}),
    RowCase("missing_order_id", [f",1,C3,{DAY}T11:00:00,books,1,5,web,US,"], {5: "missing_order_id"}),
    RowCase("missing_line_number", [f"O3,,C3,{DAY}T11:00:00,books,1,5,web,US,"], {5: "missing_line_number"}),
    RowCase("bad_line_number", [f"O3,1.5,C3,{DAY}T11:00:00,books,1,5,web,US,",
                                f"O4,0,C3,{DAY}T11:00:00,books,1,5,web,US,"],
            {5: "bad_line_number", 6: "bad_line_number"}),
    RowCase("missing_timestamp", ["O3,1,C3,,books,1,5,web,US,"], {5: "missing_timestamp"}),
    RowCase("bad_timestamp", ["O3,1,C3,10/03/2024 11:00,books,1,5,web,US,",
                              f"O4,1,C3,{DAY}T25:00:00,books,1,5,web,US,",
                              f"O5,1,C3,{DAY} 11:00:00,books,1,5,web,US,"],
            {5: "bad_timestamp", 6: "bad_timestamp", 7: "bad_timestamp"}),
    RowCase("ts_outside_partition_day", ["O3,1,C3,2024-03-09T23:59:59,books,1,5,web,US,"],
            {5: "ts_outside_partition_day"}),
    RowCase("ts_in_future", [f"O3,1,C3,{DAY}T23:30:00,books,1,5,web,US,"], {5: "ts_in_future"}),
    RowCase("unknown_category", [f"O3,1,C3,{DAY}T11:00:00,garden,1,5,web,US,",
                                 f"O4,1,C3,{DAY}T11:00:00,,1,5,web,US,"],
            {5: "unknown_category", 6: "unknown_category"}),
    RowCase("missing_quantity", [f"O3,1,C3,{DAY}T11:00:00,books,,5,web,US,"], {5: "missing_quantity"}),
    RowCase("bad_quantity", [f"O3,1,C3,{DAY}T11:00:00,books,2.5,5,web,US,",
                             f"O4,1,C3,{DAY}T11:00:00,books,two,5,web,US,"],
            {5: "bad_quantity", 6: "bad_quantity"}),
    RowCase("zero_quantity", [f"O3,1,C3,{DAY}T11:00:00,books,0,5,web,US,"], {5: "zero_quantity"}),
    RowCase("implausible_quantity", [f"O3,1,C3,{DAY}T11:00:00,books,20000,5,web,US,"],
            {5: "implausible_quantity"}),
    RowCase("missing_unit_price", [f"O3,1,C3,{DAY}T11:00:00,books,1,,web,US,"], {5: "missing_unit_price"}),
    RowCase("bad_unit_price", [f"O3,1,C3,{DAY}T11:00:00,books,1,abc,web,US,",
                               f"O4,1,C3,{DAY}T11:00:00,books,1,1.1234567,web,US,",
                               f"O5,1,C3,{DAY}T11:00:00,books,1,NaN,web,US,"],
            {5: "bad_unit_price", 6: "bad_unit_price", 7: "bad_unit_price"}),
    RowCase("negative_unit_price", [f"O3,1,C3,{DAY}T11:00:00,books,1,-5,web,US,"], {5: "negative_unit_price"}),
    RowCase("implausible_unit_price", [f"O3,1,C3,{DAY}T11:00:00,books,1,250000,web,US,"],
            {5: "implausible_unit_price"}),
    RowCase("unknown_channel", [f"O3,1,C3,{DAY}T11:00:00,books,1,5,fax,US,"], {5: "unknown_channel"}),
    RowCase("unknown_country", [f"O3,1,C3,{DAY}T11:00:00,books,1,5,web,us,",
                                f"O4,1,C3,{DAY}T11:00:00,books,1,5,web,XX,"],
            {5: "unknown_country", 6: "unknown_country"}),
    RowCase("return_without_original_order", [f"R1,1,C1,{DAY}T12:00:00,books,-1,12.5,web,US,"],
            {5: "return_without_original_order"}),
    RowCase("return_without_known_order", [f"R1,1,C1,{DAY}T12:00:00,books,-1,12.5,web,US,O999"],
            {5: "return_without_known_order"}),
    RowCase("return_of_other_customers_order", [f"R1,1,C2,{DAY}T12:00:00,books,-1,12.5,web,US,O1"],
            {5: "return_without_known_order"}),
    RowCase("original_order_on_sale", [f"O3,1,C1,{DAY}T12:00:00,books,1,12.5,web,US,O1"],
            {5: "original_order_on_sale"}),
    RowCase("duplicate_line", [f"O1,1,C1,{DAY}T09:00:00,books,2,12.5,web,US,",
                               f"O2,1,C2,{DAY}T10:30:00,toys,5,1,store,DE,"],
            {5: "duplicate_line", 6: "duplicate_line"}),
    RowCase("several_reasons_on_one_row", [f",x,,{DAY}T99:00:00,garden,0,-1,fax,ZZ,"],
            {5: "missing_order_id,bad_line_number,missing_customer_id,bad_timestamp,unknown_category,"
                "zero_quantity,negative_unit_price,unknown_channel,unknown_country"}),
    # valid returns: same-file sale, and a sale of an earlier (already loaded) day
    RowCase("return_of_same_file_order_is_valid", [f"R1,1,C1,{DAY}T12:00:00,books,-1,12.5,web,US,O1"], {}),
    RowCase("return_of_earlier_day_order_is_valid", [f"R1,1,C9,{DAY}T12:00:00,books,-2,7,app,FR,P1"], {},
            prior=["P1,1,C9,2024-03-09T08:00:00,books,2,7,app,FR,"]),
    RowCase("return_outside_return_window", [f"R1,1,C9,{DAY}T12:00:00,books,-2,7,app,FR,P1"],
            {5: "return_without_known_order"}, prior=["P1,1,C9,2023-12-01T08:00:00,books,2,7,app,FR,"],
            prior_day="2023-12-01"),
    # the same order line delivered again in another day's file (a new line of that order is fine)
    RowCase("duplicate_line_from_earlier_file", [f"P1,1,C9,{DAY}T08:00:00,books,2,7,app,FR,",
                                                 f"P1,2,C9,{DAY}T08:00:00,toys,1,7,app,FR,"],
            {5: "duplicate_line_other_file"}, prior=["P1,1,C9,2024-03-09T08:00:00,books,2,7,app,FR,"]),
    RowCase("same_line_key_outside_duplicate_window_is_valid", [f"P1,1,C9,{DAY}T08:00:00,books,2,7,app,FR,"], {},
            prior=["P1,1,C9,2024-02-01T08:00:00,books,2,7,app,FR,"], prior_day="2024-02-01"),
    # ' C3' and 'C3' would be two customers; padding and spaces make a timestamp ambiguous to read
    RowCase("id_with_spaces", [f"O3 ,1,C3,{DAY}T11:00:00,books,1,5,web,US,",
                               f"O4,1, C3,{DAY}T11:00:00,books,1,5,web,US,"],
            {5: "id_with_spaces", 6: "id_with_spaces"}),
    # a tab, line break or NUL inside an id, or a huge id: lookups and exports break downstream
    RowCase("id_with_control_characters_or_too_long", [f'O3,1,"C\t3",{DAY}T11:00:00,books,1,5,web,US,',
                                                         f"O5,1,{'C' * 201},{DAY}T11:00:00,books,1,5,web,US,"],
            {5: "bad_id", 6: "bad_id"}),
    # invisible characters: "C3" + zero-width space would be another customer that looks like C3 everywhere
    RowCase("id_with_invisible_characters", [f"O3,1,C3\u200b,{DAY}T11:00:00,books,1,5,web,US,",
                                             f"\ufeffO4,1,C3,{DAY}T11:00:00,books,1,5,web,US,"],
            {5: "bad_id", 6: "bad_id"}),
    RowCase("timestamp_not_in_the_contract_format", ["O3,1,C3,2024-3-10T1:0:0,books,1,5,web,US,",
                                                     f"O4,1,C3, {DAY}T11:00:00,books,1,5,web,US,"],
            {5: "bad_timestamp", 6: "bad_timestamp"}),
    RowCase("quantity_beyond_integer_range", [f"O3,1,C3,{DAY}T11:00:00,books,99999999999,5,web,US,"],
            {5: "implausible_quantity"}),
    # the sale is quarantined, so it is not loaded: its return has no known order either
    RowCase("return_of_quarantined_sale", [f"S1,1,C9,{DAY}T10:00:00,books,2,2.50,web,ZZ,",
                                           f"R1,1,C9,{DAY}T11:00:00,books,-2,2.50,web,US,S1"],
            {5: "unknown_country", 6: "return_without_known_order"}),
    RowCase("quoted_fields_are_valid", [f'"O3",1,"C,3",{DAY}T11:00:00,books,1,"5.25",web,US,'], {}),
]


@dataclass
class FileCase:
    name: str
    content: bytes | None                 # None: see `setup`
    error: str                            # fragment of the LandingFileError message
    file_name: str = f"transactions_{DAY}.csv"
    setup: str | None = None              # name of a special setup in the test


def _b(text: str) -> bytes:
    return text.encode("utf-8")


GOOD_TEXT = csv_text()

FILE_CASES = [
    FileCase("empty_file", b"", "empty file (0 bytes)"),
    FileCase("blank_first_line", _b("\n" + GOOD_TEXT), "missing header: the first line is empty"),
    FileCase("missing_header", _b("\n".join(GOOD) + "\n"), "missing header: the first line looks like data"),
    FileCase("renamed_column", _b(GOOD_TEXT.replace("customer_id", "client_id", 1)),
             "wrong header: missing column(s) customer_id; unexpected column(s) client_id"),
    FileCase("missing_column", _b(GOOD_TEXT.replace(",original_order_id", "", 1)),
             "wrong header: missing column(s) original_order_id"),
    FileCase("columns_out_of_order", _b(GOOD_TEXT.replace("order_id,line_number", "line_number,order_id", 1)),
             "wrong header: columns out of order"),
    FileCase("cr_only_line_endings", _b(GOOD_TEXT.replace("\n", "\r")), "line endings are CR only"),
    FileCase("header_with_spaces_after_commas", _b(GOOD_TEXT.replace(HEADER, HEADER.replace(",", ", "), 1)),
             "column names with spaces around them"),
    FileCase("header_upper_case", _b(GOOD_TEXT.replace(HEADER, HEADER.upper(), 1)), "column names not in lower case"),
    FileCase("header_upper_case_out_of_order",
             _b(GOOD_TEXT.replace(HEADER, HEADER.upper().replace("ORDER_ID,LINE_NUMBER", "LINE_NUMBER,ORDER_ID", 1), 1)),
             "column names not in lower case and in another order"),
    FileCase("header_upper_case_with_spaces", _b(GOOD_TEXT.replace(HEADER, HEADER.upper().replace(",", ", "), 1)),
             "column names with spaces around them and not in lower case"),
    # an export with its own column names (no value-like field): not taken for data
    FileCase("export_column_names", _b(GOOD_TEXT.replace(HEADER, "OrderNo,Line,CustomerNo,OrderDate,ProductGroup,"
                                                                 "Qty,Price,SalesChannel,CountryCode,ReturnOf", 1)),
             "none of the columns is a landing column: the first line must be the header"),
    FileCase("semicolon_delimiter", _b(GOOD_TEXT.replace(",", ";")), "wrong delimiter: the header is semicolon-separated"),
    FileCase("tab_delimiter", _b(GOOD_TEXT.replace(",", "\t")), "wrong delimiter: the header is tab-separated"),
    FileCase("utf8_bom", b"\xef\xbb\xbf" + _b(GOOD_TEXT), "UTF-8 byte-order mark (BOM)"),
    FileCase("utf16", GOOD_TEXT.encode("utf-16"), "bad encoding: UTF-16 byte-order mark"),
    FileCase("latin1_byte", _b(GOOD_TEXT) + "O9,1,Céline,2024-03-10T11:00:00,books,1,5,web,FR,\n".encode("latin-1"),
             "bad encoding: byte 0xe9 on line 5 is not valid UTF-8"),
    FileCase("nul_byte", _b(GOOD_TEXT).replace(b"C2", b"C\x002"), "bad encoding: NUL byte on line 4"),
    FileCase("truncated_last_line", _b(GOOD_TEXT + f"O9,1,C9,{DAY}T11:00"), "truncated last line 5: 4 of 10 fields"),
    FileCase("truncated_inside_quotes", _b(GOOD_TEXT + f'O9,1,C9,{DAY}T11:00:00,books,1,5,web,US,"O'),
             "truncated last line 5: unterminated quote"),
    FileCase("too_many_fields", _b(csv_text(f"O9,1,C9,{DAY}T11:00:00,books,1,5,web,US,,extra", good=GOOD[:1])),
             "malformed CSV: line 3 has 11 fields, expected 10"),
    FileCase("trailing_empty_field", _b(csv_text(f"O9,1,C9,{DAY}T11:00:00,books,1,5,web,US,,", good=GOOD[:1])),
             "malformed CSV: line 3 has 11 fields, expected 10"),
    FileCase("unquoted_decimal_comma", _b(csv_text(f'O9,1,C9,{DAY}T11:00:00,books,1,"1,5",web,US,',
                                                   f"O9,2,C9,{DAY}T11:00:00,books,1,1,5,web,US,")),
             "malformed CSV: line 6 has 11 fields, expected 10"),
    FileCase("header_trailing_comma", _b(GOOD_TEXT.replace(HEADER, HEADER + ",", 1)),
             "a column without a name (a trailing comma?)"),
    FileCase("too_few_fields_mid_file", _b(csv_text(f"O9,1,C9,{DAY}T11:00:00,books,1,5", good=GOOD[:1]) + GOOD[2] + "\n"),
             "malformed CSV: line 3 has 7 fields, expected 10"),
    FileCase("unterminated_quote_mid_file", _b(csv_text(f'O9,1,"C9,{DAY}T11:00:00,books,1,5,web,US,') + "x\n"),
             "malformed CSV: line 5: value with an unterminated quote"),
    FileCase("wrong_file_name_compact_date", _b(GOOD_TEXT), "wrong file name", file_name="transactions_20240310.csv"),
    FileCase("wrong_file_name_case", _b(GOOD_TEXT), "wrong file name", file_name=f"Transactions_{DAY}.CSV"),
    FileCase("wrong_extension", _b(GOOD_TEXT), "wrong file name", file_name=f"transactions_{DAY}.txt"),
    FileCase("csv_and_parquet_both", None, "deliver one file per day", setup="both"),
    FileCase("parquet_missing_column", None, "Parquet schema mismatch: missing column(s) channel",
             file_name=f"transactions_{DAY}.parquet", setup="parquet_missing_column"),
    FileCase("parquet_wrong_type", None, "Parquet schema mismatch: column order_ts has type INTEGER",
             file_name=f"transactions_{DAY}.parquet", setup="parquet_wrong_type"),
    FileCase("parquet_timestamp_with_time_zone", None,
             "column order_ts has type TIMESTAMP WITH TIME ZONE (order_ts must be a timestamp without time zone",
             file_name=f"transactions_{DAY}.parquet", setup="parquet_timestamptz"),
    FileCase("parquet_corrupt", b"PAR1 this is not parquet", "not a readable Parquet file",
             file_name=f"transactions_{DAY}.parquet"),
    FileCase("not_a_regular_file", None, "unreadable: not a regular file", setup="directory"),
]
