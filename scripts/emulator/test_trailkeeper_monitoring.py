"""The emulator's metric filter patterns against the examples of CloudWatch Logs' "Filter and
pattern syntax" page, each both ways (run by tests/emulator_policy.rs:
`python3 -m unittest scripts/emulator/test_trailkeeper_monitoring.py`).
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html"""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from trailkeeper_monitoring import PatternError, matches, metric_value, parse_pattern  # noqa: E402

# The page's JSON examples.
EVENT = json.dumps({
    "eventType": "UpdateTrail",
    "sourceIPAddress": "111.111.111.111",
    "arrayKey": ["value", "another value"],
    "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
    "SomeObject": None,
    "ThisFlag": True,
})
COMPOUND = json.dumps({
    "user": {"id": 1, "email": "John.Stiles@example.com"},
    "users": [{"id": 2, "email": "John.Doe@example.com"}, {"id": 3, "email": "Jane.Doe@example.com"}],
    "actions": ["GET", "PUT", "DELETE"],
    "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]],
})


def match(pattern, message):
    return matches(parse_pattern(pattern), message)


class JsonPatterns(unittest.TestCase):
    def test_the_pages_matching_examples_match(self):
        for pattern in [
            '{ $.eventType = "UpdateTrail" }',
            "{ $.sourceIPAddress != 123.123.* }",
            '{ $.arrayKey[0] = "value" }',
            "{ $.objectList[1].id = 2 }",
            "{ $.SomeObject IS NULL }",
            "{ $.SomeOtherObject NOT EXISTS }",
            "{ $.ThisFlag IS TRUE }",
        ]:
            self.assertTrue(match(pattern, EVENT), pattern)

    def test_near_misses_do_not(self):
        for pattern in [
            '{ $.eventType = "CreateTrail" }',
            "{ $.sourceIPAddress != 111.111.* }",
            '{ $.arrayKey[1] = "value" }',
            "{ $.objectList[2].id = 2 }",
            "{ $.ThisFlag IS NULL }",
            "{ $.SomeObject NOT EXISTS }",
            "{ $.ThisFlag IS FALSE }",
            # A selector that points to an array or an object: neither = nor != matches.
            "{ $.arrayKey = 1 }",
            "{ $.arrayKey != 1 }",
            # A field that is not there: no comparison holds.
            "{ $.missing != x }",
        ]:
            self.assertFalse(match(pattern, EVENT), pattern)

    def test_and_binds_tighter_than_or_and_parentheses_first(self):
        # The page's four compound examples, with its verdicts.
        self.assertTrue(match('{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }', COMPOUND))
        self.assertFalse(match('{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }', COMPOUND))
        self.assertTrue(match(
            '{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }',
            COMPOUND))
        self.assertFalse(match(
            '{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && $.actions[2] = nomatch }',
            COMPOUND))

    def test_wildcards_only_at_the_ends(self):
        event = json.dumps({"a": "PutEvent", "b": "EventName", "c": "Ev*ent", "d": "Event"})
        self.assertTrue(match("{ $.a = *Event }", event))
        self.assertTrue(match("{ $.b = Event* }", event))
        self.assertTrue(match("{ $.c = Ev*ent }", event))
        self.assertFalse(match("{ $.d = Ev*ent }", event))
        self.assertTrue(match('{ $.a = "*Ev*" }', event))

    def test_numeric_comparisons(self):
        event = json.dumps({"latency": 700, "numbers": [0.001], "errorCode": 400})
        for pattern in ["{ $.latency >= 500 }", "{ $.numbers[0] < 10e-2 }", "{ $.errorCode = 400 }",
                        "{ $.errorCode != 500 }", "{ $.latency > +600 }"]:
            self.assertTrue(match(pattern, event), pattern)
        for pattern in ["{ $.latency < 500 }", "{ $.errorCode = 401 }"]:
            self.assertFalse(match(pattern, event), pattern)

    def test_a_message_that_is_not_json_matches_no_json_pattern(self):
        self.assertFalse(match('{ $.a = "b" }', "plain text"))

    def test_cis_4_1_v3_excludes_only_access_denied_from_delivery_logs(self):
        pattern = ('{ ($.errorCode ="*UnauthorizedOperation") || ($.errorCode ="AccessDenied*") && '
                   '($.sourceIPAddress!="delivery.logs.amazonaws.com") && ($.eventName!="HeadBucket") }')
        denied = {"errorCode": "AccessDenied", "sourceIPAddress": "203.0.113.1", "eventName": "GetObject"}
        self.assertTrue(match(pattern, json.dumps(denied)))
        self.assertFalse(match(pattern, json.dumps(dict(denied, sourceIPAddress="delivery.logs.amazonaws.com"))))
        self.assertFalse(match(pattern, json.dumps(dict(denied, eventName="HeadBucket"))))
        unauthorized = {"errorCode": "Client.UnauthorizedOperation", "sourceIPAddress": "delivery.logs.amazonaws.com",
                        "eventName": "HeadBucket"}
        self.assertTrue(match(pattern, json.dumps(unauthorized)))

    def test_invalid_patterns_do_not_parse(self):
        for pattern in [
            "{ $.a = }",
            "{ $.a == b }",
            "{ ($.a = b }",
            "{ $.a = b) }",
            "{ $.a = b && }",
            "{ $.a = b & $.c = d }",
            "{ a = b }",
            "{ $.a }",
            "{ $.a IS MAYBE }",
            "{ $.a NOT THERE }",
            "{ $.a > high }",
            "{ $.a = user@example.com }",
            "{ }",
            '{ $.a = "b }',
            "{ $.a = b",
            '"unbalanced',
        ]:
            with self.assertRaises(PatternError, msg=pattern):
                parse_pattern(pattern)


class TextPatterns(unittest.TestCase):
    def test_terms_or_and_exclusion(self):
        self.assertTrue(match('"ERROR"', "[ERROR] A fatal exception has occurred"))
        self.assertTrue(match('"ERROR" -"Exiting"', "[ERROR] A fatal exception"))
        self.assertFalse(match('"ERROR" -"Exiting"', "Exiting with ERRORCODE: -1"))
        self.assertTrue(match("ERROR Exception", "[ERROR] Unhandled Exception"))
        self.assertFalse(match("ERROR WARN", "ERROR message"))
        self.assertTrue(match("?ERROR ?WARN", "WARN message"))
        self.assertTrue(match("", "anything"))


class MetricValues(unittest.TestCase):
    def test_a_number_or_a_field(self):
        self.assertEqual(metric_value({"metricValue": "1"}, "{}"), 1.0)
        self.assertEqual(metric_value({"metricValue": "$.latency"}, '{"latency": 12}'), 12.0)
        self.assertIsNone(metric_value({"metricValue": "$.latency"}, '{"latency": "slow"}'))


if __name__ == "__main__":
    unittest.main()
