"""donkey.jsontext against the json module: same text out, same values back."""

import json
import random

import pytest

from donkey import jsontext

SAMPLES = [
    None, True, False, 0, -1, 2**70, -(2**70), 0.0, -0.0, 1.5, 1e-7, 1e22, 1796424279.044102,
    "", "plain", 'quote " and \\ backslash', "tab\tnew\nline\rcr\bbs\fff", "\x00\x1f\x7f",
    "caf\u00e9", "\u2028\u2029", "emoji \U0001F600", "\ud800 lone surrogate", "/slash",
    [], {}, [1, [2, [3, []]]], {"a": {"b": {"c": {}}}}, (1, "two"),
    {"id": "ab" * 32, "config": {"command": ["sh", "-c", "echo $HOME"], "env": ["A=b"],
                                 "mounts": [{"source": "/x y", "readonly": True}]},
     "exit_code": None, "created": 1796424279.5, "cgroup_paths": {}},
]


def _random_value(rng: random.Random, depth: int = 0):
    kinds = ["str", "int", "float", "const"] + (["list", "dict"] if depth < 4 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return "".join(chr(rng.choice([rng.randrange(0, 0x80), rng.randrange(0x80, 0x3000),
                                       rng.randrange(0x10000, 0x10FFFF)]))
                       for _ in range(rng.randrange(0, 12)))
    if kind == "int":
        return rng.randrange(-(2**40), 2**40)
    if kind == "float":
        return rng.uniform(-1e6, 1e6) * 10 ** rng.randrange(-20, 20)
    if kind == "const":
        return rng.choice([None, True, False])
    if kind == "list":
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(0, 5))]
    return {f"k{index}\u00e9\"": _random_value(rng, depth + 1)
            for index in range(rng.randrange(0, 5))}


@pytest.mark.parametrize("value", SAMPLES)
def test_dumps_matches_json(value):
    assert jsontext.dumps(value) == json.dumps(value)


@pytest.mark.parametrize("value", SAMPLES)
def test_loads_reads_json_text(value):
    text = json.dumps(value)
    assert jsontext.loads(text) == json.loads(text)
    assert jsontext.loads(text.encode()) == json.loads(text)


def test_random_documents_round_trip_like_json():
    rng = random.Random(20261204)
    for _ in range(500):
        value = _random_value(rng)
        text = jsontext.dumps(value)
        assert text == json.dumps(value)
        assert jsontext.loads(text) == json.loads(text)
        pretty = json.dumps(value, indent=2, ensure_ascii=False)
        assert jsontext.loads(pretty) == json.loads(pretty)


def test_special_floats_like_json():
    for value in (float("inf"), float("-inf")):
        assert jsontext.dumps(value) == json.dumps(value)
        assert jsontext.loads(json.dumps(value)) == value
    assert jsontext.dumps(float("nan")) == "NaN"
    nan = jsontext.loads("NaN")
    assert nan != nan


@pytest.mark.parametrize("text", ['{"a": 1', "[1, 2", '"open', "tru", "[1 2]", '{"a" 1}',
                                  "{1: 2}", '"bad \\x escape"', '"\\u12"', "[1,]", "+1",
                                  "1 2", "", "   ", "-", "[", '{"a": 1,}'])
def test_invalid_text_raises_value_error(text):
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        jsontext.loads(text)


def test_unsupported_values_raise_type_error():
    with pytest.raises(TypeError):
        jsontext.dumps({1: "int key"})
    with pytest.raises(TypeError):
        jsontext.dumps({"set": {1, 2}})
