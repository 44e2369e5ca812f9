#!/usr/bin/env python3
"""Generates src/io/text/generated_tokenizer_tables.c: every Unicode / ftfy / html
table the C port of open_clip's SimpleTokenizer needs, taken from the very
Python objects the reference uses, so the C code matches them exactly.

Run from the repository root with the project's venv (open_clip 3.3.0,
ftfy 6.3.1, regex, CPython 3.11 => unicodedata 14.0.0):

    .venv/bin/python scripts/gen_tokenizer_tables.py [output.c]

What comes from where:
  * Python str semantics (CPython's own Unicode database): str.isspace,
    str.lower, the Cased / Case_Ignorable properties that str.lower's
    Final_Sigma rule consults (probed through str.lower itself), the `re`
    module's \\s \\w \\d classes (used by ftfy's regexes), and the code points
    unicodedata 14.0 leaves unassigned (C's NFC treats them as inert).
  * `regex` module semantics: the membership of every code point in the
    pre-tokeniser classes [\\p{L}], [\\p{N}], [^\\s\\p{L}\\p{N}] compiled with
    re.IGNORECASE exactly as open_clip does, and case-insensitive letter
    equivalents (e.g. U+017F LONG S matches 's').
  * html: html.entities.html5 and html's numeric-reference fix-up tables.
  * ftfy: HTML_ENTITIES, LIGATURES, WIDTH_MAP, the single-byte codecs in
    CHARMAP_ENCODINGS (incl. its 'sloppy' codecs), UTF8_CLUES and BADNESS_RE
    (compiled into a tiny item program the C side interprets).
"""
import html
import html.entities
import re
import sys
import unicodedata
import warnings

import regex
import ftfy
import ftfy.bad_codecs  # noqa: F401  (registers the sloppy-* codecs)
from ftfy import badness, chardata

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import sre_constants
    import sre_parse

MAX_CP = 0x110000


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------
def to_ranges(codepoints):
    """Sorted inclusive (lo, hi) ranges covering the given code points."""
    out = []
    for c in sorted(set(codepoints)):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return [tuple(r) for r in out]


def c_string(s):
    """A C string literal holding the UTF-8 bytes of `s` (escaped)."""
    parts = []
    for b in s.encode("utf-8"):
        if 0x20 <= b < 0x7F and chr(b) not in '"\\?':
            parts.append(chr(b))
        else:
            parts.append("\\%03o" % b)
    return '"' + "".join(parts) + '"'


class Writer:
    def __init__(self):
        self.lines = []

    def emit(self, line=""):
        self.lines.append(line)

    def ranges(self, name, ranges, comment):
        self.emit(f"/* {comment} */")
        self.emit(f"const vt_cp_range {name}[] = {{")
        for lo, hi in ranges:
            self.emit(f"    {{0x{lo:X}, 0x{hi:X}}},")
        if not ranges:
            self.emit("    {0xFFFFFFFF, 0}, /* empty */")
        self.emit("};")
        self.emit(f"const size_t {name}_count = {len(ranges)};")
        self.emit()

    def cp_map(self, name, mapping, comment):
        self.emit(f"/* {comment} */")
        self.emit(f"const vt_cp_map {name}[] = {{")
        for cp in sorted(mapping):
            self.emit(f"    {{0x{cp:X}, {c_string(mapping[cp])}}},")
        self.emit("};")
        self.emit(f"const size_t {name}_count = {len(mapping)};")
        self.emit()

    def entities(self, name, table, comment):
        names = sorted(table, key=lambda k: k.encode("ascii"))
        self.emit(f"/* {comment} */")
        self.emit(f"const vt_entity {name}[] = {{")
        for k in names:
            self.emit(f"    {{{c_string(k)}, {c_string(table[k])}}},")
        self.emit("};")
        self.emit(f"const size_t {name}_count = {len(names)};")
        self.emit()


# ----------------------------------------------------------------------------
# Python str semantics
# ----------------------------------------------------------------------------
def python_space():
    return [c for c in range(MAX_CP) if chr(c).isspace()]


def python_lower_map():
    """chr(c).lower() wherever it changes c; U+03A3 is context-dependent and
    handled by the C code's Final_Sigma rule instead."""
    out = {}
    for c in range(MAX_CP):
        if c == 0x3A3 or 0xD800 <= c <= 0xDFFF:
            continue
        low = chr(c).lower()
        if low != chr(c):
            out[c] = low
    return out


def python_sigma_properties():
    """(Case_Ignorable, Cased-and-not-ignorable) as CPython's str.lower sees
    them, probed through its Final_Sigma rule (unicodeobject.c,
    handle_capital_sigma): for a char x,
      (' ' + x + 'Σ').lower() ends in 'ς'  <=>  not ignorable(x) and cased(x)
      ('A' + x + 'Σ').lower() ends in 'ς'  <=>  ignorable(x) or cased(x)
    Cased matters only for non-ignorable chars (both scans stop at the first
    non-ignorable one), so these two probes determine everything. The probes
    are batched into one string per kind, each framed by spaces (neither
    cased nor ignorable), so every Σ sees only its own probe."""
    cps = [c for c in range(MAX_CP) if not 0xD800 <= c <= 0xDFFF]
    # chars whose lowercase has another length (U+0130) would shift the batch
    odd = {c for c in cps if len(chr(c).lower()) != 1}

    def probe(prefix):
        batch = [c for c in cps if c not in odd]
        lowered = "".join(" " + prefix + chr(c) + "\u03a3 " for c in batch).lower()
        step = len(prefix) + 4
        assert len(lowered) == step * len(batch)
        result = {c: lowered[i * step + step - 2] == "\u03c2" for i, c in enumerate(batch)}
        for c in odd:
            result[c] = (" " + prefix + chr(c) + "\u03a3").lower()[-1] == "\u03c2"
        return [result[c] for c in cps]

    t1, t2 = probe(""), probe("A")
    cased = [c for c, a in zip(cps, t1) if a]
    ignorable = [c for c, a, b in zip(cps, t1, t2) if b and not a]
    return ignorable, cased


def all_codepoints_string():
    """Every code point except surrogates, in order, with its code point list."""
    cps = [c for c in range(MAX_CP) if not 0xD800 <= c <= 0xDFFF]
    return "".join(map(chr, cps)), cps


def matching_codepoints(compiled):
    """Code points a single-character pattern matches (one finditer pass)."""
    text, cps = all_codepoints_string()
    return [cps[m.start()] for m in compiled.finditer(text)]


def re_category_set(pattern):
    return matching_codepoints(re.compile(pattern))


def python_unassigned():
    return [c for c in range(MAX_CP) if unicodedata.category(chr(c)) == "Cn"]


# ----------------------------------------------------------------------------
# regex-module semantics of open_clip's pre-tokeniser
# ----------------------------------------------------------------------------
TOKEN_CLASS_NONE, TOKEN_CLASS_LETTER, TOKEN_CLASS_NUMBER = 0, 1, 2
# (anything not listed is TOKEN_CLASS_OTHER = 3: [^\s\p{L}\p{N}])


def token_classes():
    flags = regex.IGNORECASE
    letter = set(matching_codepoints(regex.compile(r"[\p{L}]", flags)))
    number = set(matching_codepoints(regex.compile(r"[\p{N}]", flags)))
    other = set(matching_codepoints(regex.compile(r"[^\s\p{L}\p{N}]", flags)))
    assert not (letter & number) and not (letter & other) and not (number & other)
    classes = {}
    for c in range(MAX_CP):
        if 0xD800 <= c <= 0xDFFF:
            continue
        if c in letter:
            classes[c] = TOKEN_CLASS_LETTER
        elif c in number:
            classes[c] = TOKEN_CLASS_NUMBER
        elif c not in other:
            classes[c] = TOKEN_CLASS_NONE
    out = []  # (lo, hi, class) runs
    for c in sorted(classes):
        v = classes[c]
        if out and out[-1][1] == c - 1 and out[-1][2] == v:
            out[-1][1] = c
        else:
            out.append([c, c, v])
    return out


def case_insensitive_extras():
    """Non-ASCII code points that regex's IGNORECASE lets match an ASCII letter."""
    out = []
    for letter in "abcdefghijklmnopqrstuvwxyz":
        for c in matching_codepoints(regex.compile(letter, regex.IGNORECASE)):
            if c >= 0x80:
                out.append((letter, c))
    return out


# ----------------------------------------------------------------------------
# ftfy / html data
# ----------------------------------------------------------------------------
def charmap_tables():
    tables = []
    for enc in chardata.CHARMAP_ENCODINGS:
        decoded = bytes(range(256)).decode(enc)
        assert len(decoded) == 256 and len(set(decoded)) == 256, enc
        # ftfy's ENCODING_REGEXES allow ASCII 0x00-0x19, 0x1B-0x7F plus what
        # bytes 0x80-0xFF and 0x1A decode to: i.e. exactly the decode table
        # when bytes below 0x80 other than 0x1A decode to themselves.
        for b in range(0x80):
            assert b == 0x1A or ord(decoded[b]) == b, (enc, b)
            assert decoded[b].encode(enc) == bytes([b])
        tables.append((enc, [ord(ch) for ch in decoded]))
    strict = []
    for b in range(256):
        try:
            strict.append(ord(bytes([b]).decode("windows-1252")))
        except UnicodeDecodeError:
            strict.append(None)
    return tables, strict


def sre_class_set(items, space, word, digit):
    """Code point set of a parsed `re` character class / single item."""
    negate = False
    members = set()
    for op, av in items:
        if op is sre_constants.NEGATE:
            negate = True
        elif op is sre_constants.LITERAL:
            members.add(av)
        elif op is sre_constants.RANGE:
            members.update(range(av[0], av[1] + 1))
        elif op is sre_constants.CATEGORY:
            if av is sre_constants.CATEGORY_SPACE:
                members.update(space)
            elif av is sre_constants.CATEGORY_WORD:
                members.update(word)
            elif av is sre_constants.CATEGORY_DIGIT:
                members.update(digit)
            else:
                raise ValueError(av)
        else:
            raise ValueError(op)
    if negate:
        return ("negate", members)
    return ("set", members)


def badness_program(space, word, digit):
    """BADNESS_RE as a list of alternatives, each a list of items
    (kind, optional, class_index); kinds: 0 class, 1 any-but-newline,
    2 start of string."""
    parsed = sre_parse.parse(badness.BADNESS_RE.pattern, badness.BADNESS_RE.flags)
    assert len(parsed.data) == 1 and parsed.data[0][0] is sre_constants.BRANCH
    classes, class_index = [], {}

    def intern(cls):
        kind, members = cls
        if kind == "negate":
            members = set(range(MAX_CP)) - members
            members -= set(range(0xD800, 0xE000))
        key = tuple(to_ranges(members))
        if key not in class_index:
            class_index[key] = len(classes)
            classes.append(key)
        return class_index[key]

    def item(op, av, optional=False):
        if op is sre_constants.IN:
            return (0, optional, intern(sre_class_set(av, space, word, digit)))
        if op is sre_constants.LITERAL:
            return (0, optional, intern(("set", {av})))
        if op is sre_constants.ANY:
            return (1, optional, 0)
        if op is sre_constants.AT and av is sre_constants.AT_BEGINNING:
            return (2, optional, 0)
        if op is sre_constants.MAX_REPEAT and av[0] == 0 and av[1] == 1:
            sub = list(av[2])
            assert len(sub) == 1
            return item(*sub[0], optional=True)
        raise ValueError((op, av))

    alternatives = []
    for alt in parsed.data[0][1][1]:
        alternatives.append([item(op, av) for op, av in alt.data])
    # The union of every first-item class: a quick filter for is_bad. (The C
    # matcher relies on every alternative starting with a class or with `^`.)
    starters = set()
    for alt in alternatives:
        kind, optional, idx = alt[0]
        assert kind in (0, 2) and not optional
        if kind == 0:
            for lo, hi in classes[idx]:
                starters.update(range(lo, hi + 1))
    return classes, alternatives, to_ranges(starters)


def utf8_clue_sets():
    out = {}
    for name, chars in chardata.UTF8_CLUES.items():
        members = {c for c in range(0x10000) if re.match("[" + chars + "]", chr(c))}
        out[name] = to_ranges(members)
    return out


def check_detector_shape():
    """The C code hand-codes UTF8_DETECTOR_RE's shape; make sure it did not move."""
    expected = """
    (?<! [{utf8_continuation_strict}])
    (
        [{utf8_first_of_2}] [{utf8_continuation}]
        |
        [{utf8_first_of_3}] [{utf8_continuation}]{{2}}
        |
        [{utf8_first_of_4}] [{utf8_continuation}]{{3}}
    )+
    """.format(**chardata.UTF8_CLUES)
    assert chardata.UTF8_DETECTOR_RE.pattern == expected
    assert chardata.HTML_ENTITY_RE.pattern == r"&#?[0-9A-Za-z]{1,24};"
    assert ftfy.__version__ == "6.3.1", ftfy.__version__


def html_invalid_tables():
    charrefs = {num: ch for num, ch in html._invalid_charrefs.items()}
    return charrefs, to_ranges(html._invalid_codepoints)


# ----------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------
def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "src/io/text/generated_tokenizer_tables.c"
    check_detector_shape()
    w = Writer()
    w.emit("/* GENERATED FILE - do not edit. Produced by scripts/gen_tokenizer_tables.py")
    w.emit(f" * from CPython {sys.version.split()[0]} (unicodedata {unicodedata.unidata_version}),")
    w.emit(f" * regex {regex.__version__}, ftfy {ftfy.__version__} and html.entities in .venv.")
    w.emit(" * Regenerate with: .venv/bin/python scripts/gen_tokenizer_tables.py */")
    w.emit('#include "io/text/unicode_util.h"')
    w.emit()
    w.emit(f'const char vt_gen_python_unicode_version[] = "{unicodedata.unidata_version}";')
    w.emit()

    space = python_space()
    word = re_category_set(r"\w")
    digit = re_category_set(r"\d")
    assert space == re_category_set(r"\s")

    w.ranges("vt_gen_py_space", to_ranges(space), "str.isspace() (also `re` \\s)")
    w.ranges("vt_gen_py_decimal", to_ranges(digit), "`re` \\d for str patterns (Nd)")
    ignorable, cased = python_sigma_properties()
    w.ranges("vt_gen_py_case_ignorable", to_ranges(ignorable),
             "Case_Ignorable, as str.lower's Final_Sigma rule sees it")
    w.ranges("vt_gen_py_cased", to_ranges(cased),
             "Cased (only meaningful for chars that are not case-ignorable)")
    w.cp_map("vt_gen_py_lower", python_lower_map(),
             "chr(c).lower() where it differs from c (U+03A3 excluded: Final_Sigma)")
    w.ranges("vt_gen_py_unassigned", to_ranges(python_unassigned()),
             "code points unicodedata leaves unassigned (Cn): inert for NFC")

    runs = token_classes()
    w.emit("/* open_clip pre-tokeniser classes (regex, IGNORECASE): 0 = matched by no")
    w.emit(" * alternative (skipped), 1 = [\\p{L}], 2 = [\\p{N}]; unlisted = [^\\s\\p{L}\\p{N}] */")
    w.emit("const vt_cp_class_range vt_gen_token_class[] = {")
    for lo, hi, v in runs:
        w.emit(f"    {{0x{lo:X}, 0x{hi:X}, {v}}},")
    w.emit("};")
    w.emit(f"const size_t vt_gen_token_class_count = {len(runs)};")
    w.emit()
    extras = case_insensitive_extras()
    w.emit("/* non-ASCII code points regex's IGNORECASE matches against an ASCII letter */")
    w.emit("const vt_ci_extra vt_gen_ci_extra[] = {")
    for letter, c in extras:
        w.emit(f"    {{'{letter}', 0x{c:X}}},")
    w.emit("};")
    w.emit(f"const size_t vt_gen_ci_extra_count = {len(extras)};")
    w.emit()

    tables, strict = charmap_tables()
    w.emit("/* ftfy.chardata.CHARMAP_ENCODINGS, in ftfy's order: byte -> code point */")
    w.emit(f"const char *const vt_gen_charmap_names[VT_GEN_CHARMAP_COUNT] = {{")
    for enc, _ in tables:
        w.emit(f'    "{enc}",')
    w.emit("};")
    w.emit("const uint32_t vt_gen_charmap_decode[VT_GEN_CHARMAP_COUNT][256] = {")
    for enc, table in tables:
        w.emit(f"    {{ /* {enc} */")
        for i in range(0, 256, 8):
            w.emit("        " + " ".join(f"0x{c:04X}," for c in table[i:i + 8]))
        w.emit("    },")
    w.emit("};")
    w.emit("/* the same, inverted and sorted by code point (for encoding) */")
    w.emit("const vt_charmap_entry vt_gen_charmap_encode[VT_GEN_CHARMAP_COUNT][256] = {")
    for enc, table in tables:
        w.emit(f"    {{ /* {enc} */")
        pairs = sorted((c, b) for b, c in enumerate(table))
        for i in range(0, 256, 6):
            w.emit("        " + " ".join(f"{{0x{c:04X}, 0x{b:02X}}}," for c, b in pairs[i:i + 6]))
        w.emit("    },")
    w.emit("};")
    w.emit("/* Python's strict windows-1252 codec; VT_NO_CHAR where it raises */")
    w.emit("const uint32_t vt_gen_cp1252_strict[256] = {")
    for i in range(0, 256, 8):
        w.emit("    " + " ".join(("VT_NO_CHAR," if c is None else f"0x{c:04X},") for c in strict[i:i + 8]))
    w.emit("};")
    w.emit()

    w.entities("vt_gen_ftfy_entities", chardata.HTML_ENTITIES,
               "ftfy.chardata.HTML_ENTITIES: '&name;' -> text (incl. its ALL-CAPS forms)")
    w.entities("vt_gen_html5_entities", html.entities.html5,
               "html.entities.html5: name (with or without ';') -> text")
    charrefs, invalid_cps = html_invalid_tables()
    w.cp_map("vt_gen_html_invalid_charrefs", charrefs, "html._invalid_charrefs")
    w.ranges("vt_gen_html_invalid_codepoints", invalid_cps, "html._invalid_codepoints")
    w.cp_map("vt_gen_ftfy_ligatures", {k: v for k, v in chardata.LIGATURES.items()},
             "ftfy.chardata.LIGATURES")
    w.cp_map("vt_gen_ftfy_width_map", chardata.WIDTH_MAP, "ftfy.chardata.WIDTH_MAP")

    clues = utf8_clue_sets()
    for name, ranges in clues.items():
        w.ranges(f"vt_gen_{name}", ranges, f"ftfy.chardata.UTF8_CLUES['{name}']")

    classes, alternatives, starters = badness_program(space, word, digit)
    flat, spans = [], []
    for cls in classes:
        spans.append((len(flat), len(cls)))
        flat.extend(cls)
    w.ranges("vt_gen_badness_class_ranges", flat,
             "character classes of ftfy.badness.BADNESS_RE, concatenated")
    w.emit("const vt_class_span vt_gen_badness_classes[] = {")
    for off, n in spans:
        w.emit(f"    {{{off}, {n}}},")
    w.emit("};")
    w.emit(f"const size_t vt_gen_badness_class_count = {len(spans)};")
    w.emit("/* BADNESS_RE's alternatives, in order: items {kind, optional, class} */")
    w.emit("const vt_pattern_alt vt_gen_badness_alts[] = {")
    for alt in alternatives:
        assert len(alt) <= VT_PATTERN_MAX_ITEMS
        items = ", ".join(f"{{{k}, {int(o)}, {c}}}" for k, o, c in alt)
        w.emit(f"    {{{len(alt)}, {{{items}}}}},")
    w.emit("};")
    w.emit(f"const size_t vt_gen_badness_alt_count = {len(alternatives)};")
    w.emit()
    w.ranges("vt_gen_badness_starters", starters,
             "union of the classes that can start a BADNESS_RE match")

    text = "\n".join(w.lines) + "\n"
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {out_path} ({len(text)} bytes)")


VT_PATTERN_MAX_ITEMS = 8

if __name__ == "__main__":
    main()
