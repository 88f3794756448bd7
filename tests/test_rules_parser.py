"""The rule language's parser: every construct, every error in words with line, column and caret, hostile files."""

from __future__ import annotations

import time

import pytest

from computehub_tui.rules import parser
from computehub_tui.rules.fields import ACCOUNT_FIELDS, FIELDS, INSTANCE_FIELDS, Kind, Scope, Unit
from computehub_tui.rules.model import (
    ActionKind,
    AllOf,
    AnyOf,
    Comparison,
    Negation,
    Position,
    Rule,
    RuleError,
)
from computehub_tui.rules.parser import parse_rules

ISSUE_EXAMPLES = '''\
rule "idle-stop": IF gpu_util < 5 FOR 30m AND status == "running" THEN stop; notify telegram
IF status == "exited" THEN restart
IF status == "exited" AND pricing == "interruptible" THEN relaunch
IF status == "provisioning" FOR 20m THEN relaunch
IF cost_per_hour > $2.0 AND gpu ~ "A100*" THEN migrate(provider="runpod", max_price=1.8)
IF spend_today > 50 THEN stop_all; notify email "daily cap hit: {spend_today}"
IF price_change_24h > 20% AND provider == "vast" THEN notify webhook
'''


def one_rule(text: str) -> Rule:
    result = parse_rules(text)
    assert result.ok, [error.render() for error in result.errors]
    assert len(result.rules) == 1
    return result.rules[0]


def only_error(text: str) -> RuleError:
    result = parse_rules(text)
    assert len(result.errors) == 1, [error.render() for error in result.errors]
    return result.errors[0]


# -- the language --------------------------------------------------------------------------------------------------


def test_every_example_of_the_issue_parses_to_the_model() -> None:
    result = parse_rules(ISSUE_EXAMPLES)
    assert result.ok, [error.render() for error in result.errors]
    idle, crash, spot, stuck, migrate, cap, price = result.rules
    assert idle.name == "idle-stop" and crash.name == "line-2" and price.name == "line-7"
    assert idle.condition == AllOf((Comparison("gpu_util", "<", 5.0, Position(1, 22), 1800.0),
                                    Comparison("status", "==", "running", Position(1, 47))))
    assert [a.kind for a in idle.actions] == [ActionKind.STOP, ActionKind.NOTIFY]
    assert idle.actions[1].args == {"channel": "telegram"}
    assert stuck.condition == Comparison("status", "==", "provisioning", Position(4, 4), 1200.0)
    assert migrate.condition.parts[0].value == 2.0  # type: ignore[union-attr]
    assert migrate.condition.parts[1].op == "~"  # type: ignore[union-attr]
    assert migrate.actions[0].args == {"provider": "runpod", "max_price": 1.8}
    assert cap.actions[1].args == {"channel": "email", "template": "daily cap hit: {spend_today}"}
    assert price.condition.parts[0].value == 20.0  # type: ignore[union-attr]
    assert spot.actions[0].kind is ActionKind.RELAUNCH
    assert crash.text == "IF status == \"exited\" THEN restart"


def test_scope_flags_follow_the_fields_and_actions() -> None:
    result = parse_rules(ISSUE_EXAMPLES + 'IF spend_month > $900 OR burn_rate > 30 THEN notify toast\n'
                         'IF project_spend_today > $10 THEN stop\n')
    by_line = {rule.position.line: rule for rule in result.rules}
    assert by_line[6].account_scope and by_line[6].may_act_on_fleet
    assert by_line[8].account_scope and not by_line[8].may_act_on_fleet
    assert not by_line[1].account_scope and not by_line[1].may_act_on_fleet
    # project_spend_today is filled per instance, so its rule runs per instance and may stop one.
    assert not by_line[9].account_scope


def test_keywords_are_case_insensitive_and_fields_lowercase() -> None:
    upper = one_rule('IF gpu_util < 5 AND NOT status IN ["exited"] OR label ~ "x*" THEN stop')
    lower = one_rule('if GPU_UTIL < 5 and not status in ["EXITED"] or label ~ "x*" then Stop')
    mixed = one_rule('If gpu_util < 5 And Not status In ["exited"] Or label ~ "x*" ThEn STOP')
    assert upper.condition == lower.condition == mixed.condition
    assert upper.actions[0].kind is lower.actions[0].kind is ActionKind.STOP


def test_and_binds_tighter_than_or_and_parentheses_group() -> None:
    plain = one_rule('IF gpu_util < 5 OR gpu_temp > 90 AND power_w > 300 THEN stop').condition
    assert isinstance(plain, AnyOf) and isinstance(plain.parts[1], AllOf)
    grouped = one_rule('IF (gpu_util < 5 OR gpu_temp > 90) AND power_w > 300 THEN stop').condition
    assert isinstance(grouped, AllOf) and isinstance(grouped.parts[0], AnyOf)
    negated = one_rule('IF not (gpu_util < 5 or not gpu_temp > 90) THEN stop').condition
    assert isinstance(negated, Negation) and isinstance(negated.part, AnyOf)
    assert isinstance(negated.part.parts[1], Negation)


def test_for_binds_to_the_comparison_right_before_it() -> None:
    condition = one_rule('IF status == "running" AND gpu_util < 5 FOR 30m AND vram_used_pct < 10 '
                         'THEN stop').condition
    assert isinstance(condition, AllOf)
    assert [part.window_s for part in condition.parts] == [None, 1800.0, None]  # type: ignore[union-attr]


@pytest.mark.parametrize(("literal", "field", "value"), [
    ("$2.5", "cost_per_hour", 2.5), ("2.5", "cost_per_hour", 2.5), ("20%", "gpu_util", 20.0),
    ("-10%", "price_change_24h", -10.0), ("30s", "uptime", 30.0), ("30m", "uptime", 1800.0),
    ("2h", "idle_for", 7200.0), ("1d", "uptime", 86400.0), ("80GB", "vram_used_gb", 80.0),
    ("80gib", "vram_used_gb", 80.0), ("4", "gpu_count", 4.0), ("$51.20", "spend_today", 51.2),
])
def test_literals_with_units(literal: str, field: str, value: float) -> None:
    comparison = one_rule(f"IF {field} > {literal} THEN notify toast").condition
    assert isinstance(comparison, Comparison) and comparison.value == value


def test_lists_strings_and_globs() -> None:
    condition = one_rule('IF provider in ["vast", \'runpod\'] AND gpu_count not in (1, 2) AND gpu ~ "H100*" '
                         'AND label == "say \\"hi\\"" THEN stop').condition
    assert isinstance(condition, AllOf)
    provider, count, gpu, label = condition.parts
    assert provider == Comparison("provider", "in", ("vast", "runpod"), provider.position)  # type: ignore[union-attr]
    assert count.op == "not in" and count.value == (1.0, 2.0)  # type: ignore[union-attr]
    assert gpu.value == "H100*"  # type: ignore[union-attr]
    assert label.value == 'say "hi"'  # type: ignore[union-attr]


def test_every_action_form() -> None:
    rule = one_rule('IF gpu_util < 5 THEN stop; start; restart; destroy; relaunch; '
                    'migrate(provider="RunPod", max_price=$1.8, gpu="A100"); label "idle"; '
                    'notify webhook "{label} at {gpu_util}"; WARN 10m stop_all where provider == "vast" and '
                    'gpu_util < 1; stop_all;')
    kinds = [action.kind for action in rule.actions]
    assert kinds == [ActionKind.STOP, ActionKind.START, ActionKind.RESTART, ActionKind.DESTROY, ActionKind.RELAUNCH,
                     ActionKind.MIGRATE, ActionKind.LABEL, ActionKind.NOTIFY, ActionKind.STOP_ALL,
                     ActionKind.STOP_ALL]
    migrate, label, notify, narrowed, everything = rule.actions[5:]
    assert migrate.args == {"provider": "runpod", "max_price": 1.8, "gpu": "A100"}
    assert label.args == {"text": "idle"}
    assert notify.args == {"channel": "webhook", "template": "{label} at {gpu_util}"}
    assert narrowed.warn_s == 600.0 and isinstance(narrowed.where, AllOf)
    assert everything.where is None and everything.warn_s is None
    assert rule.may_act_on_fleet


def test_comments_blank_lines_and_continuation_lines() -> None:
    text = ('# my rules\n'
            '\n'
            'rule "idle": IF gpu_util < 5 FOR 30m   # a comment\n'
            '    AND status == "running"\n'
            '    # a comment between continuation lines\n'
            '\n'
            '\tTHEN stop; notify telegram "#1 is idle"\n'
            '# trailing comment\n'
            'IF status == "exited" THEN restart\n')
    result = parse_rules(text)
    assert result.ok, [error.render() for error in result.errors]
    idle, crash = result.rules
    assert idle.position == Position(3, 1) and crash.position == Position(9, 1) and crash.name == "line-9"
    assert idle.actions[1].args["template"] == "#1 is idle"
    assert idle.text.startswith('rule "idle"') and idle.text.endswith('"#1 is idle"')
    assert "trailing" not in idle.text


# -- errors ------------------------------------------------------------------------------------------------------


def test_the_issue_error_example_with_line_column_and_caret() -> None:
    error = only_error('IF status == "exited" THEN restart\n\nIF gpu_util < 5 FOR soon THEN stop\n')
    assert error.position == Position(3, 21)
    assert error.render() == ("line 3, col 21: expected a duration like 30m after FOR\n"
                              "  IF gpu_util < 5 FOR soon THEN stop\n"
                              "                      ^")


@pytest.mark.parametrize(("text", "column", "message"), [
    ("IF gpu_utl < 5 THEN stop", 4, "unknown field 'gpu_utl'; did you mean 'gpu_util'?"),
    ("IF gpu_util < 5 THEN stp", 22, "unknown action 'stp'; did you mean 'stop'?"),
    ("IF gpu_util < 5 THEN notify telegrm", 29, "unknown channel 'telegrm'; did you mean 'telegram'?"),
    ('IF gpu_util < 5 THEN migrate(provder="vast")', 30,
     "unknown migrate argument 'provder'; did you mean 'provider'?"),
    ('IF gpu_util < 5 THEN migrate(provider="vst")', 39, "unknown provider 'vst'; did you mean 'vast'?"),
    ('IF status == "runing" THEN stop', 14, '"runing" is not a status; did you mean "running"?'),
    ('IF pricing == "spot" THEN stop', 15, '"spot" is not a pricing'),
    ("IF gpu_util < 30m THEN stop", 15, "30m is a duration, but gpu_util takes a percentage such as 20 or 20%"),
    ("IF uptime > 5 THEN stop", 13, "5 is a plain number, but uptime takes a duration like 30m"),
    ("IF gpu_count > 80GB THEN stop", 16, "80GB is an amount of GB, but gpu_count takes a plain number"),
    ('IF gpu_util > "high" THEN stop', 15, "gpu_util is a number; compare it with a percentage"),
    ("IF gpu == 4090 THEN stop", 11, 'gpu is text; write the value in quotes, e.g. gpu == "4090"'),
    ('IF gpu_count ~ "4*" THEN stop', 14, "~ matches text patterns, but gpu_count is a number"),
    ('IF gpu < "A100" THEN stop', 8, "< compares numbers, but gpu is text"),
    ("IF spend_today > 5 FOR 10m THEN notify toast", 24, "FOR needs a field sampled per instance; spend_today"),
    ("IF gpu_util < 5 FOR 8d THEN stop", 21, "FOR takes a duration from 1s to 7d"),
    ("IF spend_today > 50 THEN stop", 26, "stop acts on one instance, but this condition reads only account"),
    ('IF provider in "vast" THEN stop', 13, 'in needs a list, e.g. provider in ["a", "b"]'),
    ('IF provider == ["vast"] THEN stop', 13, "a list goes with in or not in, not =="),
    ("IF provider in [] THEN stop", 13, "the list is empty"),
    ("IF gpu_util < 5% THEN stop \"now\"", 28, "stop takes nothing after it"),
    ("IF gpu_util < 5 THEN label", 22, 'label needs the text to set, e.g. label "idle"'),
    ("IF gpu_util < 5 THEN notify", 22, "notify needs a channel: telegram, email, webhook, toast"),
    ("IF gpu_util < 5 THEN WARN soon stop", 27, "expected a duration like 30m after WARN"),
    ("IF gpu_util < 5 THEN WARN 5 stop", 27, "expected a duration like 30m after WARN"),
    ("IF gpu_util < 5 THEN stop where gpu_util < 1", 27, "stop takes nothing after it"),
    ("IF gpu_util < 1e400 THEN stop", 15, "unknown unit 'e400' in 1e400"),
    ("IF gpu_util < 99999999999999 THEN stop", 15, "99999999999999 is out of range"),
    ('IF status = "running" THEN stop', 11, "expected an operator (==, !=, <, <=, >, >=, in, not in, ~)"),
    ('IF status == "running THEN stop', 14, 'this text has no closing "'),
    ("IF gpu_util <  THEN stop", 16, 'expected a value like 5, 20%, $2.5, 30m or "running"'),
    ("IF gpu_util < 5 THEN", 21, "expected an action such as stop, restart or notify telegram"),
    ("IF gpu_util < 5 stop", 17, "expected AND, OR, FOR or THEN"),
    ("IF THEN stop", 4, "expected a condition such as gpu_util < 5"),
    ("IF (gpu_util < 5 THEN stop", 18, "expected"),
    ("IF gpu_util < 5 THEN stop restart", 27, "stop takes nothing after it"),
    ('IF gpu_util < 5 THEN notify toast "a" "b"', 39, "expected ; before the next action, or the end of the rule"),
    ("gpu_util < 5 THEN stop", 1, 'expected IF (or rule "name": IF ...)'),
    ("IF gpu_util < 5 THEN stop!", 26, "unexpected character '!'"),
    ('rule "": IF gpu_util < 5 THEN stop', 6, "a rule name cannot be empty"),
])
def test_error_messages_in_words(text: str, column: int, message: str) -> None:
    error = only_error(text)
    assert (error.position, error.source_line) == (Position(1, column), text)
    assert error.message.startswith(message), error.message
    caret_line = error.render().splitlines()[2]
    assert caret_line == "  " + " " * (column - 1) + "^"
    for token_name in ("NAME", "QUANTITY", "RPAR", "$END", "SEMICOLON"):
        assert token_name not in error.message


def test_every_error_in_a_file_is_reported_and_good_rules_still_parse() -> None:
    text = ('IF gpu_utl < 5 THEN stp\n'           # two errors in one rule
            'IF status == "exited" THEN restart\n'
            'IF gpu_util < 5 FOR soon THEN stop\n'
            '  AND more\n'
            'IF spend_today > 5 FOR 10m THEN notify telegrm\n'
            'IF status == "running" THEN stop\n')
    result = parse_rules(text)
    assert [(error.position.line, error.position.column) for error in result.errors] == [
        (1, 4), (1, 21), (3, 21), (5, 24), (5, 40)]
    assert [rule.position.line for rule in result.rules] == [2, 6]


def test_duplicate_rule_names_are_an_error() -> None:
    result = parse_rules('rule "a": IF gpu_util < 5 THEN stop\n'
                         'IF gpu_util < 6 THEN stop\n'
                         'rule "a": IF gpu_util < 7 THEN stop\n')
    assert [rule.name for rule in result.rules] == ["a", "line-2"]
    assert [error.message for error in result.errors] == ['duplicate rule name "a" (first used on line 1)']
    assert result.errors[0].position == Position(3, 1)


def test_an_indented_first_line_has_no_rule_to_continue() -> None:
    error = only_error("   IF gpu_util < 5 THEN stop\n")
    assert error.position == Position(1, 4)
    assert "continues the rule above it, but there is no rule above" in error.message


def test_errors_inside_continuation_lines_point_at_their_own_line() -> None:
    error = only_error('rule "x": IF status == "running"\n'
                       '    AND gpu_utl < 5\n'
                       '    THEN stop\n')
    assert error.position == Position(2, 9) and error.source_line == "    AND gpu_utl < 5"


# -- hostile input -------------------------------------------------------------------------------------------------


def test_control_characters_are_refused_and_shown_visibly() -> None:
    error = only_error('IF label == "a\x1b]52;c;aGk=\x07" THEN stop')
    assert error.position == Position(1, 15) and "U+001B" in error.message
    assert "\x1b" not in error.render() and "\x07" not in error.render() and "␛" in error.render()
    second = parse_rules('IF label == "\u202eevil" THEN stop').errors[0]
    assert "\u202e" not in second.render() and "<U+202E>" in second.render()


def test_a_rule_with_an_unreadable_line_is_left_out_whole_and_the_next_rule_still_parses() -> None:
    result = parse_rules('IF gpu_util < 5\n'
                         '   AND label == "\x1b[31mkeep"\n'
                         '   THEN stop\n'
                         'IF status == "exited" THEN restart\n'
                         'IF label == "\x07" THEN stop\n'
                         '   AND nothing else\n')
    assert [rule.position.line for rule in result.rules] == [4]
    assert [(error.position.line, error.position.column) for error in result.errors] == [(2, 18), (5, 14)]


def test_a_long_line_is_an_error_with_a_short_excerpt_and_the_caret_on_its_column() -> None:
    text = "IF gpu_util < 5 THEN stop # " + "x" * 5000
    error = only_error(text)
    assert error.position == Position(1, parser.MAX_LINE_CHARS + 1)
    rendered = error.render().splitlines()
    assert len(rendered[1]) < 120 and rendered[1].strip().startswith("…")
    assert rendered[2].index("^") < len(rendered[1])


def test_an_error_far_along_a_long_continued_rule_keeps_its_caret_under_the_spot() -> None:
    line = "    AND " + " AND ".join(["gpu_util < 5"] * 40) + " AND gpu_utl < 5"
    error = only_error("IF status == \"running\"\n" + line + "\n    THEN stop")
    column = line.index("gpu_utl") + 1
    assert error.position == Position(2, column)
    source, caret = error.render().splitlines()[1:]
    assert source[caret.index("^"):].startswith("gpu_utl")


def test_deeply_nested_parentheses_and_nots_are_bounded_without_a_recursion_crash() -> None:
    depth = 9_000
    lines = ["IF"] + [" " + "(" * 900] * (depth // 900) + [" gpu_util < 5"] + [" " + ")" * 900] * (depth // 900)
    nested = parse_rules("\n".join(lines) + "\n THEN stop")
    assert [error.message for error in nested.errors] == [f"conditions nest deeper than {parser.MAX_DEPTH} levels"]
    nots = parse_rules("IF\n" + "\n".join([" " + "not " * 200] * 20) + " gpu_util < 5 THEN stop")
    assert [error.message for error in nots.errors] == [f"conditions nest deeper than {parser.MAX_DEPTH} levels"]
    fine = one_rule("IF " + "(" * 30 + "gpu_util < 5" + ")" * 30 + " THEN stop")
    assert fine.condition == Comparison("gpu_util", "<", 5.0, Position(1, 34))


def test_a_huge_file_is_refused_at_once() -> None:
    started = time.process_time()
    result = parse_rules("IF gpu_util < 5 THEN stop\n" * 100_000)
    assert time.process_time() - started < 1.0
    assert result.rules == () and "longer than 1,000,000 characters" in result.errors[0].message


def test_thousands_of_errors_are_bounded_and_counted() -> None:
    result = parse_rules("IF gpu_utl < 5 THEN stop\n" * 1_000)
    assert len(result.errors) == parser.MAX_ERRORS
    assert result.errors[-1].message == f"{1_000 - parser.MAX_ERRORS + 1} more errors not shown"


def test_more_rules_than_the_limit_are_reported() -> None:
    result = parse_rules("IF gpu_util < 5 THEN stop\n" * (parser.MAX_RULES + 5))
    assert len(result.rules) == parser.MAX_RULES
    assert [error.position.line for error in result.errors] == [parser.MAX_RULES + 1]


def test_text_literals_are_bounded_and_markup_is_kept_as_plain_text() -> None:
    rule = one_rule('IF label == "[bold]x[/] [@click=app.quit]q[/]" THEN label "[red]idle[/]"')
    assert rule.condition.value == "[bold]x[/] [@click=app.quit]q[/]"  # type: ignore[union-attr]
    error = only_error(f'IF label == "{"y" * 300}" THEN stop')
    assert "text longer than 200 characters" in error.message


# -- the field catalogue ---------------------------------------------------------------------------------------------


def test_the_field_catalogue_has_exactly_the_issue_names() -> None:
    assert INSTANCE_FIELDS == ("status", "provider", "gpu", "gpu_count", "label", "project", "pricing", "gpu_util",
                               "gpu_util_min", "gpu_util_avg", "vram_used_pct", "vram_used_gb", "gpu_temp", "power_w",
                               "cpu_util", "cost_per_hour", "cost_so_far", "uptime", "idle_for", "price_change_24h",
                               "project_spend_today")
    assert ACCOUNT_FIELDS == ("spend_today", "spend_month", "burn_rate", "running_count")
    assert FIELDS["status"].allowed == ("provisioning", "starting", "running", "stopped", "exited", "error",
                                        "terminated", "unknown")
    assert FIELDS["pricing"].allowed == ("on-demand", "interruptible")
    assert FIELDS["gpu_util"].unit is Unit.PERCENT and FIELDS["uptime"].unit is Unit.SECONDS
    assert FIELDS["project_spend_today"].scope is Scope.INSTANCE and not FIELDS["project_spend_today"].windowed
    assert "per instance" in FIELDS["project_spend_today"].help
    assert all(spec.help and (spec.kind is Kind.NUMBER) == (spec.unit is not Unit.NONE) for spec in FIELDS.values())
