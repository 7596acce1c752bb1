"""user_part(): the forms FreeSWITCH channel variables and SIP headers carry."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fs_plugin.numbering import classify, user_part

CASES = [
    # bare user parts (FreeSWITCH reduces P-Asserted-Identity to one)
    ("02088886666", "02088886666"),
    ("  13900001111 ", "13900001111"),
    ("+86 139 0000 1111", "+8613900001111"),
    ("(020) 8888-6666", "02088886666"),
    ("anonymous", "anonymous"),
    ("02088886666@127.0.0.1:5170", "02088886666"),  # FreeSWITCH sip_from_uri
    ("０２０－８８８８６６６６", "02088886666"),
    # SIP URIs
    ("sip:+8613900001111@host;user=phone", "+8613900001111"),
    ("sip:02088886666@10.0.0.1:5060", "02088886666"),
    ("SIP:02088886666@h", "02088886666"),
    ("sips:13900001111@secure.example", "13900001111"),
    ("sip:%2B8613900001111@host", "+8613900001111"),
    ("sip:+86-20-8888-6666@host;user=phone", "+862088886666"),
    ("sip:13900001111:secret@host", "13900001111"),
    ("sip:13900001111;npdi;rn=+8613800000000@host;user=phone", "13900001111"),
    ("sip:88886666;phone-context=+86-20@host;user=phone", "+862088886666"),
    ("sip:88886666;phone-context=example.com@host;user=phone", "88886666"),
    ("sip:sipp@[fd17:625c:f037:2:a00:27ff:feb9:1521]:15060", "sipp"),
    ("sip:anonymous@anonymous.invalid", "anonymous"),
    ("sip:invalid.unknown.domain", ""),
    ("sip:[fd17::1]:5060", ""),
    ("sip:@host", ""),
    # name-addr header values
    ("<sip:0208888@h>;reason=unconditional", "0208888"),
    ('"Name" <tel:+86-20-8888-6666>', "+862088886666"),
    ('"Lab Caller" <sip:02088886666@127.0.0.1>', "02088886666"),
    ('"+12675941249" <sip:+12675941249@10.243.0.143>;tag=jSvFv18y0pmZD', "+12675941249"),
    ('"a <b>, \\"c\\"" <sip:13900001111@h>', "13900001111"),
    ("Bob <sip:13900001111@h>;tag=1", "13900001111"),
    ('"ES8007000010MainMenu" <sip:invalid.unknown.domain>', ""),
    ("<sip:0201@h>;reason=unconditional, <sip:0202@h>;reason=user-busy", "0201"),
    ("<sip:13900001111@h", "13900001111"),  # unterminated '<': read to the end
    ('"only a name"', ""),
    # tel URIs
    ("tel:+86-20-8888-6666", "+862088886666"),
    ("tel:+8620.8888.6666;phone-context=+86", "+862088886666"),
    ("tel:8888-6666;phone-context=+86-20", "+862088886666"),
    ("tel:(020) 8888 6666", "02088886666"),
    ("TEL:10086", "10086"),
    ("tel:;phone-context=+86", ""),
    # nothing usable
    ("", ""),
    ("   ", ""),
    ("<>", ""),
]


@pytest.mark.parametrize(("value", "expected"), CASES)
def test_user_part(value: str, expected: str) -> None:
    assert user_part(value) == expected


def test_non_phone_user_parts_keep_their_text() -> None:
    # Separators are only stripped from telephone-subscriber-like parts.
    assert user_part("sip:john.doe@example.com") == "john.doe"
    assert user_part("12675941249_Uclx8s21Ck82@host") == "12675941249_Uclx8s21Ck82"


def test_bare_values_are_not_percent_decoded() -> None:
    # The ESL codec already decoded event values; decoding twice would corrupt a literal '%'.
    assert user_part("02088886666%40127.0.0.1") == "02088886666%40127.0.0.1"


@settings(max_examples=500)
@given(st.text(max_size=60))
def test_user_part_never_raises(value: str) -> None:
    assert isinstance(user_part(value), str)


@settings(max_examples=300)
@given(
    st.from_regex(r"\A\+?[0-9]{5,15}\Z"),
    st.sampled_from(["sip:{}@h", "<sip:{}@h;user=phone>;tag=x", '"N" <tel:{}>', "tel:{}", "{}"]),
)
def test_the_number_survives_every_wrapping(number: str, template: str) -> None:
    assert user_part(template.format(number)) == number


def test_header_debris_is_not_a_user_part() -> None:
    assert user_part("t<1s66<(1") == ""
    assert user_part('sip:"13900001111"@h') == ""


_URIISH = st.text(alphabet='0123456789+-() .;:@<>"%telsip*,=ab', max_size=30)


@settings(max_examples=1000)
@given(_URIISH, st.sampled_from(["", "sip:", "tel:", "<sip:+86", '"n" <tel:']))
def test_user_part_is_idempotent(value: str, prefix: str) -> None:
    # The engine and the policy loader call classify(user_part(x)); classify extracts the
    # user part again, which must change nothing.
    once = user_part(prefix + value)
    assert user_part(once) == once
    a, b = classify(prefix + value), classify(once)
    assert (a.cls, a.national, a.e164, a.malformed_reason) == (
        b.cls,
        b.national,
        b.e164,
        b.malformed_reason,
    )


# A +86 phone-context qualifies only a local subscriber number (7–8 digits, DESIGN.md):
# RFC 3966 5.1.5 warns that prepending the context need not give the number, and in China a
# number with its trunk 0, a mobile, a short code, 95/96 or 400/800 is dialled the same
# everywhere. Prepending turned '02088886666' into '+86 020…' (malformed) and a mobile in
# a Guangzhou context into a too-long Guangzhou number.
PHONE_CONTEXT_CASES = [
    ("sip:02088886666;phone-context=+86@ims.example;user=phone", "02088886666", "fixed",
     "02088886666"),
    ("tel:0898-6666-8888;phone-context=+86", "089866668888", "fixed", "089866668888"),
    ("tel:13900001111;phone-context=+86-20", "13900001111", "mobile", "13900001111"),
    ("tel:95555;phone-context=+86-20", "95555", "service", "95555"),
    ("tel:400-812-3123;phone-context=+86-10", "4008123123", "toll_free", "4008123123"),
    ("tel:10086;phone-context=+86-898", "10086", "short_code", "10086"),
    ("tel:008613900001111;phone-context=+86", "008613900001111", "mobile", "13900001111"),
    # a local subscriber number still takes its area from the context
    ("tel:8888-6666;phone-context=+86-20", "+862088886666", "fixed", "02088886666"),
    ("sip:13900001111;phone-context=+86@h;user=phone", "13900001111", "mobile", "13900001111"),
]


@pytest.mark.parametrize(("value", "part", "cls", "national"), PHONE_CONTEXT_CASES)
def test_a_chinese_phone_context_qualifies_only_local_numbers(
    value: str, part: str, cls: str, national: str
) -> None:
    assert user_part(value) == part
    n = classify(value)
    assert (n.cls.value, n.national) == (cls, national)
