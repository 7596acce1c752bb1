"""classify(): one table row per presented form, then properties over arbitrary text."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fs_plugin.numbering import (
    AREA_CODES,
    CHINESE_CLASSES,
    MAX_RAW_LENGTH,
    Number,
    NumberClass,
    classify,
)

M = NumberClass.MOBILE
F = NumberClass.FIXED
S = NumberClass.SERVICE
T = NumberClass.TOLL_FREE
C = NumberClass.SHORT_CODE
SMS = NumberClass.SMS_CODE
I = NumberClass.INTERNATIONAL  # noqa: E741 - table shorthand
A = NumberClass.ANONYMOUS

# raw, class, national, e164, presented_international
VALID: list[tuple[str, NumberClass, str | None, str | None, bool]] = [
    # mobile, every prefix form
    ("13900001111", M, "13900001111", "+8613900001111", False),
    ("+8613900001111", M, "13900001111", "+8613900001111", True),
    ("008613900001111", M, "13900001111", "+8613900001111", True),
    ("8613900001111", M, "13900001111", "+8613900001111", True),
    ("139 0000 1111", M, "13900001111", "+8613900001111", False),
    ("+86 139-0000-1111", M, "13900001111", "+8613900001111", True),
    ("１３９００００１１１１", M, "13900001111", "+8613900001111", False),
    ("14512345678", M, "14512345678", "+8614512345678", False),
    ("16512345678", M, "16512345678", "+8616512345678", False),
    ("17012345678", M, "17012345678", "+8617012345678", False),
    ("19212345678", M, "19212345678", "+8619212345678", False),
    ("19912345678", M, "19912345678", "+8619912345678", False),
    # fixed
    ("02088886666", F, "02088886666", "+862088886666", False),
    ("+862088886666", F, "02088886666", "+862088886666", True),
    ("862088886666", F, "02088886666", "+862088886666", True),
    ("00862088886666", F, "02088886666", "+862088886666", True),
    ("020-8888 6666", F, "02088886666", "+862088886666", False),
    ("(020) 8888-6666", F, "02088886666", "+862088886666", False),
    ("020.8888.6666", F, "02088886666", "+862088886666", False),
    ("０２０－８８８８６６６６", F, "02088886666", "+862088886666", False),
    ("（０２０）８８８８　６６６６", F, "02088886666", "+862088886666", False),
    ("01012345678", F, "01012345678", "+861012345678", False),
    ("+861012345678", F, "01012345678", "+861012345678", True),
    ("02188886666", F, "02188886666", "+862188886666", False),
    ("075512345678", F, "075512345678", "+8675512345678", False),
    ("0898 12345678", F, "089812345678", "+8689812345678", False),
    ("0999 1234567", F, "09991234567", "+869991234567", False),  # Yining: a real area code
    ("031112345678", F, "031112345678", "+8631112345678", False),
    ("+861065502012", F, "01065502012", "+861065502012", True),  # Beijing, not an SMS port
    # service numbers
    ("95555", S, "95555", "+8695555", False),
    ("95511", S, "95511", "+8695511", False),
    ("961234", S, "961234", "+86961234", False),
    ("95105888", S, "95105888", "+8695105888", False),
    ("+8695555", S, "95555", "+8695555", True),
    # toll free
    ("4008123123", T, "4008123123", "+864008123123", False),
    ("+86 400 812 3123", T, "4008123123", "+864008123123", True),
    ("400-812-3123", T, "4008123123", "+864008123123", False),
    ("8008123123", T, "8008123123", "+868008123123", False),
    # short codes
    ("10086", C, "10086", "+8610086", False),
    ("10010", C, "10010", "+8610010", False),
    ("12321", C, "12321", "+8612321", False),
    ("12345", C, "12345", "+8612345", False),
    ("+8610086", C, "10086", "+8610086", True),
    ("110", C, "110", "+86110", False),
    ("120", C, "120", "+86120", False),
    # SMS ports: no E.164 form
    ("1065502012345", SMS, "1065502012345", None, False),
    ("10690000", SMS, "10690000", None, False),
    ("+861065502012345", SMS, "1065502012345", None, True),
    # international
    ("+14155550100", I, None, "+14155550100", True),
    ("0014155550100", I, None, "+14155550100", True),
    ("00442079460000", I, None, "+442079460000", True),
    ("+44 20 7946 0000", I, None, "+442079460000", True),
    ("+85223456789", I, None, "+85223456789", True),
    ("+886223456789", I, None, "+886223456789", True),
    # anonymous
    ("", A, None, None, False),
    ("   ", A, None, None, False),
    ("anonymous", A, None, None, False),
    ("Anonymous", A, None, None, False),
    ("unknown", A, None, None, False),
    ("restricted", A, None, None, False),
    ("unavailable", A, None, None, False),
    ("_undef_", A, None, None, False),
    ("0000000000", A, None, None, False),
    ("sip:anonymous@anonymous.invalid", A, None, None, False),
    ('"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1', A, None, None, False),
    ('"ES8007000010MainMenu" <sip:invalid.unknown.domain>', A, None, None, False),
    ("sip:@host", A, None, None, False),
    ("--", A, None, None, False),
    ("()", A, None, None, False),
    # SIP / tel forms through user_part
    ("sip:+8613900001111@host;user=phone", M, "13900001111", "+8613900001111", True),
    ('"Name" <tel:+86-20-8888-6666>', F, "02088886666", "+862088886666", True),
    ("tel:8888-6666;phone-context=+86-20", F, "02088886666", "+862088886666", True),
    ("02088886666@127.0.0.1:5170", F, "02088886666", "+862088886666", False),
]

# raw, malformed_reason
MALFORMED: list[tuple[str, str]] = [
    ("abc", "non_digit"),
    ("139abc01111", "non_digit"),
    ("+86abc", "non_digit"),
    ("+86 139 0000 111x", "non_digit"),
    ("12675941249_Uclx8s21Ck82KTJtkFC1", "non_digit"),
    ("1390000+1111", "non_digit"),
    ("١٣٩٠٠٠٠١١١١", "non_digit"),  # Arabic-Indic digits are not dialable
    ("+", "empty"),
    ("+ ()", "empty"),
    ("1390000111", "too_short"),
    ("139000011112", "too_long"),
    ("+86", "too_short"),
    ("86", "too_short"),
    ("1", "too_short"),
    ("0", "anonymous"),  # placeholder: all zeros, see test below
    ("0208888", "too_short"),
    ("<sip:0208888@h>;reason=unconditional", "too_short"),
    ("020888866661", "too_long"),
    ("0898123456", "too_short"),
    ("9555", "too_short"),
    ("955551234", "too_long"),
    ("400812312", "too_short"),
    ("40081231234", "too_long"),
    ("1008", "too_short"),
    ("100861", "too_long"),
    ("1" + "0" * 30 + "6", "too_long"),
    ("106" + "1" * 18, "too_long"),
    ("03311234567", "unknown_area_code"),
    ("02612345678", "unknown_area_code"),
    ("01112345678", "unknown_area_code"),
    ("+86 331 1234567", "unknown_area_code"),
    ("11012345678", "bad_prefix"),
    ("12012345678", "bad_prefix"),
    ("11234", "bad_prefix"),
    ("51234", "bad_prefix"),
    ("9123", "bad_prefix"),
    ("14012345678", "reserved_range"),
    ("14612345678", "reserved_range"),
    ("+8614012345678", "reserved_range"),
    ("01010001234", "reserved_range"),  # Beijing's 1000… block is not assigned
    ("02110001234", "reserved_range"),
    ("0201234567", "too_short"),  # Guangzhou uses 8-digit numbers
    ("07551234567", "too_short"),  # so does Shenzhen
    ("099912345678", "too_long"),  # Yining uses 7
    ("2088886666", "missing_trunk_prefix"),
    ("1012345678", "missing_trunk_prefix"),
    ("75512345678", "missing_trunk_prefix"),
    ("+86020888866666", "trunk_prefix_after_country_code"),
    ("+86013900001111", "trunk_prefix_after_country_code"),
    ("+999123456", "unknown_country_code"),
    ("+0123456789", "unknown_country_code"),
    ("000123456789", "unknown_country_code"),
    ("+1415", "too_short"),
    ("+1415555010012345", "too_long"),
    ("+11235550100", "invalid_international"),
    ("x" * (MAX_RAW_LENGTH + 1), "too_long"),
]


@pytest.mark.parametrize(("raw", "cls", "national", "e164", "intl"), VALID)
def test_valid_forms(
    raw: str, cls: NumberClass, national: str | None, e164: str | None, intl: bool
) -> None:
    n = classify(raw)
    assert (n.cls, n.national, n.e164, n.presented_international) == (cls, national, e164, intl)
    assert n.raw == raw
    assert n.malformed_reason is None
    assert n.is_chinese == (cls in CHINESE_CLASSES)
    if cls in CHINESE_CLASSES:
        assert n.country_code == 86
    elif cls is NumberClass.INTERNATIONAL:
        assert n.country_code is not None and n.country_code != 86
    else:
        assert n.country_code is None


@pytest.mark.parametrize(("raw", "reason"), [m for m in MALFORMED if m[1] != "anonymous"])
def test_malformed_forms(raw: str, reason: str) -> None:
    n = classify(raw)
    assert n.cls is NumberClass.MALFORMED
    assert n.malformed_reason == reason
    assert (n.national, n.e164, n.country_code, n.area_code) == (None, None, None, None)
    assert not n.is_valid_caller_id
    assert not n.is_chinese
    assert n.key is None


def test_every_reason_and_class_is_covered() -> None:
    reasons = {reason for _, reason in MALFORMED} - {"anonymous"}
    assert reasons == {
        "empty",
        "non_digit",
        "too_short",
        "too_long",
        "unknown_area_code",
        "reserved_range",
        "bad_prefix",
        "missing_trunk_prefix",
        "trunk_prefix_after_country_code",
        "unknown_country_code",
        "invalid_international",
    }
    assert {row[1] for row in VALID} | {NumberClass.MALFORMED} == set(NumberClass)


@pytest.mark.parametrize("raw", ["0", "00", "000", "0000000000", "+0000", "00000000000000"])
def test_all_zero_digits_mean_no_number(raw: str) -> None:
    n = classify(raw)
    assert n.cls is NumberClass.ANONYMOUS
    assert n.malformed_reason is None
    assert not n.is_valid_caller_id


def test_fixed_line_attributes() -> None:
    n = classify("+86 898 1234 5678")
    assert n.area_code == "0898"
    assert n.region is not None and "海南" in n.region
    assert classify("02088886666").region == "广东省广州市"
    assert classify("01012345678").area_code == "010"
    assert classify("0999 1234567").area_code == "0999"


def test_mobile_attributes() -> None:
    n = classify("13900001111")
    assert n.area_code is None
    assert n.region == "新疆乌鲁木齐市"  # attribution of the 1390000 segment
    assert n.carrier == "中国移动"
    assert n.country_code == 86


def test_international_attributes() -> None:
    n = classify("+14155550100")
    assert n.country_code == 1
    assert n.region == "美国"
    assert n.key == "+14155550100"
    assert n.is_valid_caller_id
    assert not n.is_chinese


def test_digits_is_the_extracted_user_part() -> None:
    assert classify("sip:+86 139 0000 1111@h").digits == "8613900001111"
    assert classify("  010-1234 5678 ").digits == "01012345678"
    assert classify("abc").digits == "abc"


@pytest.mark.parametrize(
    ("cls_raw", "valid"),
    [("13900001111", True), ("1065502012345", False), ("anonymous", False), ("abc", False),
     ("95555", True), ("10086", True), ("+14155550100", True), ("4008123123", True)],
)
def test_is_valid_caller_id(cls_raw: str, valid: bool) -> None:
    assert classify(cls_raw).is_valid_caller_id is valid


def test_key_is_national_for_chinese_numbers_and_e164_otherwise() -> None:
    assert classify("+862088886666").key == "02088886666"
    assert classify("1065502012345").key == "1065502012345"
    assert classify("0014155550100").key == "+14155550100"
    assert classify("anonymous").key is None


def test_area_codes_come_from_the_validity_table() -> None:
    assert {"10", "20", "21", "755", "898", "999"} <= AREA_CODES
    assert not {"26", "11", "331", "400", "800", "950"} & AREA_CODES


def test_number_is_frozen() -> None:
    n = classify("13900001111")
    with pytest.raises(dataclasses.FrozenInstanceError):
        n.cls = NumberClass.MALFORMED  # type: ignore[misc]


def test_classify_is_cached() -> None:
    assert classify("02088886666") is classify("02088886666")


# --- properties ---------------------------------------------------------------------------

@settings(max_examples=500)
@given(st.text(max_size=40))
def test_classify_never_raises_on_any_text(raw: str) -> None:
    n = classify(raw)
    assert isinstance(n, Number)
    assert n.raw == raw
    assert (n.malformed_reason is not None) == (n.cls is NumberClass.MALFORMED)


_DIALLED = st.text(alphabet="0123456789+-() ", max_size=24)


@settings(max_examples=1000)
@given(st.one_of(_DIALLED, st.from_regex(r"\A(\+|00|86)?[0-9]{3,16}\Z")))
def test_invariants_over_digit_strings(raw: str) -> None:
    n = classify(raw)
    if n.is_chinese:
        assert n.country_code == 86
        assert n.national is not None and n.national.isdigit()
        if n.cls is not NumberClass.SMS_CODE:
            assert n.e164 is not None and n.e164.startswith("+86")
    if n.cls is NumberClass.FIXED:
        assert n.area_code is not None and n.national is not None
        assert n.national.startswith(n.area_code)
    if n.cls is NumberClass.INTERNATIONAL:
        assert n.e164 is not None and not n.e164.startswith("+86")
        assert n.presented_international


def _chinese_numbers() -> st.SearchStrategy[str]:
    mobile = st.from_regex(r"\A1[3-9][0-9]{9}\Z")
    fixed = st.builds(
        lambda code, sub: "0" + code + sub,
        st.sampled_from(sorted(AREA_CODES)),
        st.from_regex(r"\A[2-8][0-9]{6,7}\Z"),
    )
    service = st.from_regex(r"\A9[56][0-9]{3,6}\Z")
    toll_free = st.from_regex(r"\A[48]00[0-9]{7}\Z")
    short = st.from_regex(r"\A1(0[0-57-9]|2[0-9])[0-9]{2}\Z")  # 106… are SMS ports
    return st.one_of(mobile, fixed, service, toll_free, short)


@settings(max_examples=1000)
@given(_chinese_numbers())
def test_e164_of_a_chinese_number_round_trips(raw: str) -> None:
    n = classify(raw)
    if not n.is_chinese:
        return  # an unassigned range: malformed, nothing to round-trip
    assert n.e164 is not None
    again = classify(n.e164)
    assert (again.cls, again.national, again.e164) == (n.cls, n.national, n.e164)
    assert again.presented_international
    # and every other prefix form lands on the same number
    for form in ("00" + n.e164[1:], n.e164[1:], " ".join(n.e164)):
        other = classify(form)
        assert (other.cls, other.national) == (n.cls, n.national), form


@settings(max_examples=300)
@given(_chinese_numbers())
def test_national_form_is_a_fixed_point(raw: str) -> None:
    n = classify(raw)
    if n.national is not None:
        assert classify(n.national).national == n.national
