"""Token-for-token parity of the C tokenizer with open_clip's SimpleTokenizer.

Generates (fixed seed) well over 10,000 varied strings - many scripts, emoji,
combining marks, fullwidth forms, ligatures, curly quotes, mojibake in several
single-byte encodings, HTML entities and tags, contractions, whitespace and
control oddities, special-token strings, over-long text - tokenizes them with
open_clip (context 77, and a subset with context 5) and with the C helper
build/testtools/tokenize_file (override with $VITAMIN_TOKENIZE_FILE), and
requires identical ids for every string.
"""
import os
import pathlib
import random
import subprocess
import sys

import pytest
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from vtpaths import BUILD  # noqa: E402

import open_clip.tokenizer as open_clip_tokenizer  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
VOCAB = ROOT / "share" / "bpe_simple_vocab_16e6.txt.gz"
SEED = 20240917
N_RANDOM = 11000

# ---------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------
LATIN = ["café", "naïve", "Ångström", "façade", "über", "Ærøskøbing", "Łódź", "Đặng Thị",
         "ĳsselmeer", "São Paulo", "Crème Brûlée", "Ñandú", "Dvořák", "Şişli", "Øresund",
         "straße", "STRASSE", "ŒUVRE", "cœur", "Ÿ", "ǅemal", "Ǆ", "résumé", "El Niño"]
GREEK = ["ΟΔΥΣΣΕΥΣ", "Σίσυφος", "ΣΑΣ", "σοφός", "ὈΔΥΣΣΕΎΣ", "Σ", "ΑΣ'", "ΑΣ.Β", "ΑΣ\u0301",
         "Α\u0301Σ", "ΑΣ\u00adΒ", "'Σ'", "ΣΑΣ ΣΑΣ", "Ἀθῆναι", "ᾼ ᾳ ΐ", "ΆΈΉΊΌΎΏ"]
CYRILLIC = ["Привет мир", "ЁЖИК", "Ўзбекистон", "Українська", "Съешь же ещё", "Ґ ґ Ї ї"]
CJK = ["日本語のテキスト", "中文字符", "漢字", "ｶﾀｶﾅ ﾊﾟﾝ", "。、「」", "東京タワー", "𠀀𠀁"]
ARABIC = ["مرحبا بالعالم", "مُحَمَّد", "٠١٢٣٤٥٦٧٨٩", "ﻻ ﷲ", "السَّلَامُ عَلَيْكُمْ"]
HEBREW = ["שלום עולם", "שָׁלוֹם", "עִבְרִית"]
DEVANAGARI = ["नमस्ते दुनिया", "१२३", "क़ ख़ ग़", "हिन्दी"]
THAI = ["สวัสดีชาวโลก", "๑๒๓", "ภาษาไทย"]
HANGUL = ["안녕하세요", "\u1100\u1161\u11a8", "\u1112\u1161\u11ab\u1100\u1173\u11af", "ㄱㄴㄷ", "ﾡﾢ"]
EMOJI = ["😀", "👍🏽", "👨\u200d👩\u200d👧\u200d👦", "🏳\ufe0f\u200d🌈", "🇺🇸🇯🇵", "1\ufe0f\u20e3",
         "🏴\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f", "❤️", "🤷🏿\u200d♀️",
         "✔", "☃", "🙈🙉🙊"]
COMBINING = ["e\u0301", "a\u0308\u0323", "q\u0307\u0323", "o\u031b\u0323\u0301", "\u0345", "ᾳ",
             "a\u0345", "\u0301abc", "A\u030a", "\u1e9b\u0323", "\u0e40\u0e01\u0e34\u0e48"]
FULLWIDTH = ["ＡＢＣ１２３！", "ＬＯＵＤ　ＮＯＩＳＥＳ", "　", "ﾊﾝｶｸ", "Ｕﾀｰﾝ", "｡｢｣､･", "￥￦￡"]
LIGATURES = ["ﬁ", "ﬂuﬃeﬆ", "ﬀ ﬃ ﬄ ﬅ ﬆ", "Ĳ ĳ", "ŉ", "Ǳ ǲ ǳ Ǆ ǅ ǆ Ǉ ǈ ǉ Ǌ ǋ ǌ", "æ œ"]
QUOTES = ["‘single’", "“double”", "‚low‛", "„low‟", "ʼapostrophe", "it’s", "‹angle›", "«guill»"]
HTML = ["&amp;", "&lt;b&gt;", "&eacute;", "&EACUTE;", "&NTILDE;", "&nTILDE;", "&hellip;",
        "&notin;", "&not", "&amp", "&ampx", "&copy2024", "&#65;", "&#x41;", "&#X1F600;",
        "&#0;", "&#128;", "&#x80;", "&#55357;", "&#1114112;", "&#99999999999999999999999;",
        "&#59;", "&#12ab;", "&#x;", "&#;", "& amp;", "&;", "&&amp;", "&amp;amp;",
        "&amp;amp;amp;lt;", "&#x41", "&Jscr;", "&HilbertSpace;", "&SZLIG;", "&nbsp;",
        "&#13;", "&#9;", "&#x2028;", "&#xFEFF;", "&#x85;", "&#1;", "&#x7f;", "&#xFDD0;",
        "&NotEqualTilde;", "&acE;", "&fjlig;", "&ThickSpace;", "&lt", "&LT", "&ltx", "&gt;;",
        "&abcdefghijklmnopqrstuvwxyzabcdefghij;", "&#xD800;", "&#x110000;", "&#x0000041;",
        "&quot;quoted&quot;", "&apos;s", "&#39;s", "&#x27;LL", "&Agrave;", "&AGRAVE;", "&eth;"]
TAGS = ["<b>bold</b>", "<p>&amp;</p>", "a < b &amp; c", "<br/>", "<a href='x'>link</a>",
        "<start_of_text>", "<end_of_text>", "<START_OF_TEXT>", "<ſtart_of_text>",
        "<start_of_text><end_of_text>", "x<end_of_text>y", "!!<start_of_text>", "<|endoftext|>"]
PUNCT = ["!!!", "?!?!", "...", "---", "(*&^%$#@!)", "«»", "¿¡", "—", "–", "…", "•", "©®™",
         "§¶", "°", "±×÷", "€£¥¢", "←→↑↓", "∑∏√∞", "╔═╗", "░▒▓", "¯\\_(ツ)_/¯", "(╯°□°)╯︵ ┻━┻"]
DIGITS = ["12345", "3.14159", "1,000,000", "½ ¼ ² ³", "Ⅻ ⅻ", "①②③", "٣", "0x1F", "2024-01-01",
          "𝟘𝟙𝟚", "⁰¹²"]
CONTRACTIONS = ["it's", "IT'S", "don't", "DON'T", "we're", "we'RE", "I've", "I'M", "we'll",
                "WE'LL", "I'd", "'S'T'RE", "rock'n'roll", "'ll've", "o'clock", "''s", "'s'", "'",
                "'ſ", "Y'ALL'D"]
SPACES = ["\t", "\u00a0", "\u2028", "\u2029", "\u200b", "\u200d", "\u200c", "\ufeff", "\u3000",
          "\u1680", "\u2003", "\u200a", "\u202f", "\u205f", "\x1c", "\x1d", "\x1e", "\x1f",
          "\x85", "\r\n", "\r", "\n\n", "\v", "\f", "  ", "\n", "\u180e", "\u2060"]
CONTROLS = ["\x00", "\x01", "\x07", "\x08", "\x0e", "\x1a", "\x1b", "\x7f", "\x80", "\x81",
            "\x8d", "\x90", "\x9d", "\x9f", "\x1b[31mred\x1b[0m", "\x1b[1;2;3m", "\x1b[١m",
            "\u206a", "\ufff9", "\ufffc", "\ufffd", "\ue000", "\U000f0000", "\uffff"]
ENGLISH = ["a photo of a cat", "A PHOTO OF A DOG", "the quick brown fox jumps over the lazy dog",
           "Zero-shot classification", "ViTamin", "an image of a red car on a sunny day",
           "New York City", "U.S.A.", "e-mail", "hello_world", "C++", "naïvely", "x", "I",
           "Hello", "colour", "supercalifragilisticexpialidocious", "antidisestablishmentarianism"]

WORD_POOLS = [LATIN, GREEK, CYRILLIC, CJK, ARABIC, HEBREW, DEVANAGARI, THAI, HANGUL, EMOJI,
              COMBINING, FULLWIDTH, LIGATURES, QUOTES, HTML, TAGS, PUNCT, DIGITS, CONTRACTIONS,
              CONTROLS, ENGLISH, ENGLISH, ENGLISH]
SEPARATORS = [" ", " ", " ", "", "\n", "\t", ", ", ". ", "  ", "\u00a0", "-", "/"]

MOJIBAKE_ENCODINGS = ["cp1252", "latin-1", "cp1251", "cp1250", "cp1253", "cp1254", "cp1257",
                      "iso-8859-2", "mac_roman", "cp437", "sloppy-windows-1252",
                      "sloppy-windows-1251", "cp850", "koi8-r"]
MOJIBAKE_SOURCES = LATIN + GREEK + CYRILLIC + QUOTES + PUNCT + EMOJI + CJK + ARABIC + [
    "à la mode", "à l'heure", "às vezes", "àquele", "fàcil", "Ã", "São Tomé", "—", "…", "’s",
    "€100", "ñ", "ü", "é", "ß", "ẞ", "ǅ"]


def mojibake(rng, text):
    """UTF-8 bytes of `text` read back in a wrong single-byte encoding,
    sometimes twice, sometimes with NBSP flattened or bytes lost."""
    import ftfy.bad_codecs  # noqa: F401  registers sloppy-* codecs

    out = text
    for _ in range(rng.choice([1, 1, 1, 2])):
        enc = rng.choice(MOJIBAKE_ENCODINGS)
        out = out.encode("utf-8").decode(enc, errors="replace")
    roll = rng.random()
    if roll < 0.15:
        out = out.replace("\xa0", " ")
    elif roll < 0.25:
        chars = list(out)
        for _ in range(rng.randint(1, 2)):
            if chars:
                chars[rng.randrange(len(chars))] = rng.choice(["?", "\ufffd"])
        out = "".join(chars)
    return out


def cesu8_mojibake(rng):
    """CESU-8 / Java modified UTF-8 bytes decoded as latin-1 or cp1252."""
    ch = rng.choice(["😀", "👍", "𝟘", "𠀀", "🇺"])
    cp = ord(ch) - 0x10000
    hi, lo = 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF)
    raw = b"".join(bytes([0xED, 0xA0 | ((s >> 6) & 0x0F) if s < 0xDC00 else 0xB0 | ((s >> 6) & 0x0F),
                          0x80 | (s & 0x3F)]) for s in (hi, lo))
    if rng.random() < 0.3:
        raw = b"null\xc0\x80here" + raw
    return rng.choice(["x ", "", "caf\u00e9 "]) + raw.decode(rng.choice(["latin-1", "sloppy-windows-1252"]))


def random_codepoints(rng, k):
    out = []
    while len(out) < k:
        plane = rng.random()
        if plane < 0.6:
            c = rng.randrange(0x20, 0x3000)
        elif plane < 0.9:
            c = rng.randrange(0x3000, 0x10000)
        else:
            c = rng.randrange(0x10000, 0x110000)
        if 0xD800 <= c <= 0xDFFF:
            continue
        out.append(chr(c))
    return "".join(out)


def combining_soup(rng):
    marks = [chr(c) for c in (0x300, 0x301, 0x302, 0x308, 0x316, 0x323, 0x327, 0x328, 0x334,
                              0x345, 0x35C, 0x360, 0x5B0, 0x5BC, 0x64E, 0x651, 0x93C, 0x94D,
                              0x1DCE, 0x20D0, 0x302A, 0x3099)]
    base = rng.choice(["a", "e", "o", "u", "A", "Σ", "ω", "ק", "ب", "क", "か", " ", ""])
    return base + "".join(rng.choice(marks) for _ in range(rng.randint(1, 12)))


def random_phrase(rng):
    parts = []
    for _ in range(rng.randint(1, 8)):
        kind = rng.random()
        if kind < 0.62:
            parts.append(rng.choice(rng.choice(WORD_POOLS)))
        elif kind < 0.78:
            parts.append(mojibake(rng, rng.choice(MOJIBAKE_SOURCES)))
        elif kind < 0.82:
            parts.append(cesu8_mojibake(rng))
        elif kind < 0.87:
            parts.append(combining_soup(rng))
        elif kind < 0.93:
            parts.append(random_codepoints(rng, rng.randint(1, 6)))
        else:
            parts.append(rng.choice(SPACES))
        parts.append(rng.choice(SEPARATORS))
    text = "".join(parts)
    roll = rng.random()
    if roll < 0.1:
        text = text.upper()
    elif roll < 0.15:
        text = text.title()
    return text


def long_texts(rng):
    """Over-long inputs: > 77 tokens, long words, multi-line with a '<' early
    (which switches ftfy's HTML unescaping off for all later lines)."""
    out = [
        " ".join(rng.choice(ENGLISH) for _ in range(60)),
        "a" * 500,
        "supercalifragilistic" * 40,
        "😀" * 200,
        "ab" * 3000,
        "&amp;" * 100,
        "&amp;" + "amp;" * 40,
        "Σ" * 300 + "A",
        "line one &amp; <b>\nline two &amp;\nline three &eacute;",
        "first &eacute;\nsecond <tag> &eacute;\nthird &eacute;",
        "Ã©" * 500,
        "\u0301\u0323" * 400,
        "\n".join(random_phrase(rng) for _ in range(80)),
        "x" * 76, "x " * 75, "x " * 76, "x " * 77, "x " * 78,
        "", " ", "\n", "\t \u00a0\u3000", "\x00\x01", "&", "<", "'", "Σ",
    ]
    for _ in range(40):
        out.append(" ".join(random_phrase(rng) for _ in range(rng.randint(10, 40))))
    return out


def generate_strings():
    rng = random.Random(SEED)
    strings = long_texts(rng)
    for pool in WORD_POOLS + [SPACES, MOJIBAKE_SOURCES]:
        strings.extend(pool)
    for source in MOJIBAKE_SOURCES:
        for enc in MOJIBAKE_ENCODINGS:
            try:
                strings.append(source.encode("utf-8").decode(enc))
            except UnicodeDecodeError:
                pass
    while len(strings) < N_RANDOM:
        strings.append(random_phrase(rng))
    return strings


# ---------------------------------------------------------------------------
# running both sides
# ---------------------------------------------------------------------------
def tool_path():
    path = pathlib.Path(os.environ.get("VITAMIN_TOKENIZE_FILE",
                                       BUILD / "testtools" / "tokenize_file"))
    assert path.exists(), f"{path} missing: run `make` (or set VITAMIN_TOKENIZE_FILE)"
    return str(path)


def run_tool(lines, *args):
    env = dict(os.environ, VITAMIN_BPE_VOCAB=str(VOCAB))
    proc = subprocess.run([tool_path(), *args, "-"], input="".join(l + "\n" for l in lines),
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert len(out) == len(lines), proc.stderr
    return out


def run_c_tokenizer(strings, context):
    return run_tool([s.encode("utf-8").hex() for s in strings], "--context", str(context))


def c_clean(strings):
    return [bytes.fromhex(l).decode("utf-8") for l in
            run_tool([s.encode("utf-8").hex() for s in strings], "--clean")]


@pytest.fixture(scope="module")
def reference():
    return open_clip_tokenizer.SimpleTokenizer()


@pytest.fixture(scope="module")
def strings():
    return generate_strings()


def compare(reference, strings, context):
    expected = reference(strings, context_length=context).tolist()
    got = run_c_tokenizer(strings, context)
    bad = [i for i, (e, g) in enumerate(zip(expected, got)) if " ".join(map(str, e)) != g]
    if bad:
        cleaned = c_clean([strings[i] for i in bad[:8]])
        report = []
        for k, i in enumerate(bad[:8]):
            report.append(f"string {i}: {strings[i]!r}\n"
                          f"  open_clip clean: {open_clip_tokenizer._clean_lower(strings[i])!r}\n"
                          f"  C clean:         {cleaned[k]!r}\n"
                          f"  open_clip ids: {expected[i][:24]}\n"
                          f"  C ids:         {got[i][:120]}")
        pytest.fail(f"{len(bad)} of {len(strings)} strings differ; first ones:\n" +
                    "\n".join(report))


def test_corpus_is_varied(strings):
    assert len(strings) >= 10000
    assert len(set(strings)) > 9000
    assert "" in strings


def test_parity_context_77(reference, strings):
    compare(reference, strings, 77)


def test_parity_context_5(reference, strings):
    compare(reference, strings[:2000], 5)


def test_invalid_utf8_is_an_error():
    cases = {b"abc\xff": 3, b"\xc3": 0, b"ok \xed\xa0\x80": 3, b"\xc0\x80": 0,
             b"\xf4\x90\x80\x80": 0, b"caf\xc3\xa9 \xe2\x82": 6}
    out = run_tool([b.hex() for b in cases])
    for (raw, offset), line in zip(cases.items(), out):
        assert line.startswith("ERROR"), (raw, line)
        assert f"byte offset {offset}" in line, (raw, line)


def test_embedded_nul_matches_reference(reference):
    texts = ["a\x00b", "\x00", "nul\x00 \x00 end"]
    expected = reference(texts, context_length=77).tolist()
    got = run_c_tokenizer(texts, 77)
    assert got == [" ".join(map(str, e)) for e in expected]


def test_megabyte_inputs_are_fast_and_match(reference):
    """1 MB inputs: the C side must stay near-linear (each well under a few
    seconds); where open_clip itself is quick, the ids must match too."""
    import time

    mb = 1 << 20
    checked = ["the quick brown fox &amp; the lazy dog\n" * (mb // 39), "Ã©" * (mb // 4)]
    c_only = ["a" * mb, "!" * mb, "a" + "\u0301\u0323" * (mb // 4), "&amp;" + "amp;" * (mb // 4),
              "Σ\u0301" * (mb // 4), "日本語" * (mb // 9)]
    start = time.monotonic()
    got = run_c_tokenizer(checked + c_only, 77)
    elapsed = time.monotonic() - start
    assert elapsed < 30, f"C tokenizer took {elapsed:.1f}s for {len(got)} one-megabyte inputs"
    expected = reference(checked, context_length=77).tolist()
    assert got[:len(checked)] == [" ".join(map(str, e)) for e in expected]
    assert all(line.startswith("49406 ") for line in got)


def test_generated_tables_are_current(tmp_path):
    """src/io/text/generated_tokenizer_tables.c is exactly what the generator makes
    from this venv (so nobody edited it by hand and the venv did not move)."""
    import sys

    out = tmp_path / "tables.c"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_tokenizer_tables.py"), str(out)],
                   check=True, capture_output=True, cwd=ROOT, timeout=120)
    committed = (ROOT / "src" / "io" / "text" / "generated_tokenizer_tables.c").read_text(encoding="utf-8")
    assert out.read_text(encoding="utf-8") == committed, \
        "regenerate with: .venv/bin/python scripts/gen_tokenizer_tables.py"
