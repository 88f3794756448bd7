"""The filter language: words, numeric and list predicates, errors with positions, index agreement."""

from __future__ import annotations

import pytest

from computehub_tui.domain.filtering import (
    LIST_FIELDS,
    NUMERIC_FIELDS,
    FilterError,
    OfferIndex,
    field_reference,
    parse_filter,
)
from computehub_tui.domain.models import Offer, PricingKind


def offer(provider: str, gpu: str, count: int = 1, price: float = 1.0, vram: float = 24, rel: float | None = 0.99,
          location: str = "Oslo, NO", country: str = "NO", spot: bool = False, available: bool = True,
          cuda: float | None = 12.4) -> Offer:
    pricing = PricingKind.INTERRUPTIBLE if spot else PricingKind.ON_DEMAND
    return Offer(provider, f"{provider}-{gpu}-{price}", gpu, count, vram, 8, 32, 20, price, pricing, location, rel,
                 available, 0.0, country=country, cuda=cuda)


OFFERS = [
    offer("vast", "H100 SXM", 8, 18.0, 80, 0.99, "Texas, US", "US"),
    offer("runpod", "H100 SXM", 1, 2.99, 80, None, "Secure Cloud (CA)", "CA"),
    offer("lambda", "H100 PCIe", 1, 2.49, 80, None, "us-east-1", "US"),
    offer("vast", "RTX 4090", 1, 0.35, 24, 0.90, "Oslo, NO", "NO", spot=True),
    offer("tensordock", "RTX 4090", 2, 0.9, 24, None, "Chicago, United States", "US", cuda=None),
    offer("vast", "RTX A6000", 1, 0.45, 48, 0.999, "Bavaria, DE", "DE", available=False),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 6),
        ("h100", 3),
        ("H100 sxm", 2),
        ("oslo", 1),
        ("vast", 3),
        ("h100 vram>=80 price<2.5", 1),
        ("gpus>=2", 2),
        ("region:US,CA", 4),
        ("region:oslo", 1),
        ("rel>=0.98", 2),
        ("provider:vast,runpod spot:no", 3),
        ("spot:yes", 1),
        ("cuda>=12.4", 5),
        ("avail:yes", 5),
        ("gpu:h100sxm", 2),
        ("gpu:4090 pergpu<0.5", 2),
        ("p:td", 1),
        ("totalvram>=160", 1),
    ],
)
def test_filter_selects_and_agrees_with_single_offer_matching(text: str, expected: int) -> None:
    compiled = parse_filter(text)
    selected = compiled.select(OfferIndex(OFFERS))
    assert len(selected) == expected
    assert selected == [o for o in OFFERS if compiled.matches(o)]
    assert selected == compiled.apply(OFFERS)


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("h100 price<cheap", 12, "needs a number"),
        ("vram>=80 colour>3", 10, "unknown field 'colour'"),
        ("h100 nation:US", 6, "unknown field 'nation:'"),
        ("spot:maybe", 6, "yes or no"),
        ("price<", 7, "needs a number"),
        ("price<<3", 7, "'price<' needs a number, got '<'"),
        ("h100 >=2", 1, "unknown field 'h100'"),
        (">=2 h100", 1, "needs a field before it"),
        ("provider:", 10, "needs a value"),
        ("provider:vast,aws", 15, "unknown provider 'aws'"),
        ("h100 price", 6, "'price' is a field"),
        ('"rtx 4090', 10, "unclosed quote"),
        ("gpu:4090 region>2", 10, "'region' is a list field"),
        ("price:3", 1, "'price' is a number"),
        ("price<nan", 7, "needs a number"),
    ],
)
def test_malformed_filters_name_the_column_of_the_bad_character(text: str, column: int, fragment: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    assert fragment in str(caught.value)
    assert f"column {column}" in str(caught.value)
    assert caught.value.caret() == f"{text}\n{' ' * (column - 1)}^"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rel>=98", "rel is a fraction 0–1 (did you mean rel>=0.98?)"),
        ("reliability>95", "reliability is a fraction 0–1 (did you mean reliability>0.95?)"),
        ("rel>=250", "rel is a fraction 0–1"),
        ("price<-1", "price cannot be negative"),
        ("pergpu<=-0.5", "pergpu cannot be negative"),
        ("gpus>=100", "gpus counts the GPUs of one machine (0–64)"),
        ("vram>=1280", "vram is the VRAM of one GPU in GB (did you mean totalvram>=1280?)"),
        ("cuda>=124", "cuda is a CUDA version like 12.4 (did you mean cuda>=12.4?)"),
    ],
)
def test_out_of_range_values_say_what_the_field_means(text: str, message: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    assert caught.value.message == message
    assert text[caught.value.position:].lstrip("-").replace(".", "").isdigit()  # the caret is on the value


def test_values_inside_the_bounds_are_accepted() -> None:
    compiled = parse_filter("rel>=1 gpus<=64 vram>=192 cuda>=12.8 price>=0")
    assert [p.value for p in compiled.predicates] == [1.0, 64.0, 192.0, 12.8, 0.0]


@pytest.mark.parametrize("text", ["price < 3", "price <3", "price< 3", "price<3", "PRICE<$3", "dph < 3"])
def test_spaces_around_a_comparison_are_allowed(text: str) -> None:
    assert parse_filter(text).predicates == parse_filter("price<3").predicates


def test_quoted_phrases_match_as_one_phrase() -> None:
    phrase = parse_filter('"rtx 4090"')
    assert phrase.words == ("rtx 4090",)
    assert phrase.apply(OFFERS) == [o for o in OFFERS if o.gpu == "RTX 4090"]
    # "h100 texas" as two words matches one offer; as one phrase it matches none
    assert len(parse_filter("h100 texas").apply(OFFERS)) == 1
    assert parse_filter('"h100 texas"').apply(OFFERS) == []
    listed = parse_filter('gpu:"rtx 4090",a6000 vram>=24')
    assert [o.gpu for o in listed.apply(OFFERS)] == ["RTX 4090", "RTX 4090", "RTX A6000"]
    assert parse_filter('"price"').words == ("price",)  # quoting makes a field name a word


def keystrokes(text: str) -> list[str]:
    return [text[:end] for end in range(1, len(text) + 1)]


def live(text: str) -> tuple[str, object]:
    """What the live `/` box makes of ``text``: a filter, an incomplete hint, or an error."""
    try:
        return ("ok", parse_filter(text, partial=True))
    except FilterError as error:
        return ("incomplete" if error.incomplete else "error", error)


def test_typing_a_predicate_never_filters_by_its_half_typed_field_name() -> None:
    outcomes = {text: live(text) for text in keystrokes("price<<3")}
    for text in ("p", "pr", "pri", "pric", "price", "price<"):
        assert outcomes[text][0] == "incomplete", text
    kind, error = outcomes["price<<"]
    assert kind == "error" and isinstance(error, FilterError) and error.position == 6
    assert outcomes["price<<3"][0] == "error"
    for text in keystrokes("price < 2.5"):
        kind, compiled = live(text)
        assert kind in ("incomplete", "ok"), text
        if kind == "ok":
            assert not compiled.words, text  # type: ignore[union-attr]


def test_typing_spot_no_keeps_the_last_result_until_the_value_means_something() -> None:
    assert live("h100 spot")[0] == "incomplete"
    assert live("h100 spot:")[0] == "incomplete"
    kind, compiled = live("h100 spot:n")
    assert kind == "ok" and compiled.apply(OFFERS) == [o for o in OFFERS[:3]]  # type: ignore[union-attr]
    assert live("h100 spot:no")[1].apply(OFFERS) == OFFERS[:3]  # type: ignore[union-attr]
    assert live("spot:ye")[0] == "incomplete"
    assert live("spot:maybe")[0] == "error"
    assert live("provider:ru")[0] == "incomplete"
    assert live("provider:ru h100")[0] == "error"  # no longer at the end: it will not complete itself


def test_a_finished_filter_reads_short_prefixes_as_words_but_rejects_bare_field_names() -> None:
    assert parse_filter("pr").words == ("pr",)
    assert parse_filter("r ", partial=True).words == ("r",)  # a space ends the word
    with pytest.raises(FilterError, match="'price' is a field"):
        parse_filter("price")


def test_every_field_is_documented_with_a_working_example() -> None:
    reference = field_reference()
    names = {row[0].split(" ")[0] for row in reference}
    assert names == set(NUMERIC_FIELDS) | set(LIST_FIELDS)
    for _, meaning, example in reference:
        assert meaning
        assert parse_filter(example).predicates


def test_index_keeps_order_so_sorted_input_stays_sorted() -> None:
    ordered = sorted(OFFERS, key=lambda o: o.price_hour)
    assert [o.price_hour for o in parse_filter("vast").select(OfferIndex(ordered))] == [0.35, 0.45, 18.0]


def test_reordered_index_keeps_columns_aligned_with_offers() -> None:
    index = OfferIndex(OFFERS)
    index.column("rel")
    order = index.sort_order("price", lambda o: o.price_hour, reverse=False)
    ordered = index.reordered(order)
    assert [o.price_hour for o in ordered.offers] == sorted(o.price_hour for o in OFFERS)
    assert ordered.column("rel") == [o.reliability for o in ordered.offers]
    assert parse_filter("rel>=0.95").select(ordered) == [o for o in ordered.offers if (o.reliability or 0) >= 0.95]
