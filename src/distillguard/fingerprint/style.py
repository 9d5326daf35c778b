"""Keyed style canaries: rewrite answers to an account's secret style, and test a suspect for it.

Every account in canary mode gets one secret bit per style family
(:mod:`~distillguard.fingerprint.style_lexicon`): American or British spelling, contracted or
full forms, ``-`` or ``*`` bullets, ``1.`` or ``1)`` item numbers, straight or typographic
apostrophes. Its answers are rewritten to those choices — ``colour`` but ``organize``, ``don’t``
but ``it is``, ``* item`` — which changes no meaning. A student trained on the harvest learns the mix.

The test needs no base rate and no reference model. The bits are drawn uniformly and
independently from the key, so for a suspect that never saw the account's answers the bits are
independent of everything it writes: whatever its own habits (a model that always writes
``color`` is as likely to agree with a bit as to disagree), the statistic
``T = Σ_f s_f · clip(n1_f − n0_f, −c, c)`` over the families it used (s_f = ±1 the account's
bit, n0/n1 the suspect's counts of each variant) is, under the null, a sum of the fixed weights
with random signs. Its exact tail is computed by convolution: an exact p-value, the
best one with every family agreeing being 2^-m for m families observed.

The scanner is one piece of code for serving and testing: :class:`StyleRewriter` rewrites a
stream chunk by chunk (holding back at most the last two words, which a contraction may need),
:func:`count_style` counts the same occurrences in a suspect's text. Code (fenced blocks and
inline backticks) and words glued to identifiers, paths or numbers are never touched; list
markers are the non-word text between two words, rewritten when that gap is consumed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache

import numpy as np

from distillguard.errors import ConfigError, InputError
from distillguard.fingerprint.style_lexicon import (
    MARK_APOSTROPHE,
    MARK_BULLET,
    MARK_NUMBERED,
    StyleFamily,
    default_families,
)
from distillguard.stats import holm_log

__all__ = [
    "StyleCounts",
    "StyleResult",
    "StyleRewriter",
    "count_style",
    "rewrite_style",
    "style_bits",
    "style_test",
]

_DOMAIN = b"distillguard/v1/style-canary"
_WORD = re.compile(r"[A-Za-z]+(?:['\u2019][A-Za-z]+)*")
_FENCE_OR_NEWLINE = re.compile(r"`+|~{3,}|\n")
# A word glued to one of these is part of an identifier, path, address or number: left alone.
_GLUE_BEFORE = frozenset("_/\\@#$%&=<>*+|")
_GLUE_AFTER = frozenset("_/\\@#$%&=<>*+|([{")
_SUBJECTS = frozenset({"i", "you", "we", "they", "he", "she", "it", "there", "that", "this", "one"})
_HAS_NOT_IS = frozenset({"been", "got", "gotten", "had"})  # "it's been" is "it has", not "it is"
# A list item at the start of a line: bullet "-"/"*" or item number with "."/")", then a space.
# Deeper than 8 columns it is an indented code block, not a list, whatever a renderer does.
_LIST_ITEM = re.compile(r"[ \t]{0,8}(?:([-*])|\d{1,2}([.)]))[ \t]+")
# "* * *" and "- - -" are thematic breaks (horizontal rules), not list items.
_THEMATIC_BREAK = re.compile(r"[ \t]*([-*_])(?:[ \t]*\1){2,}[ \t]*")
_IN_WORD_APOSTROPHE = re.compile(r"(?<=[A-Za-z])['\u2019](?=[A-Za-z])")


def style_bits(secret: bytes, account_id: str,
               families: Sequence[StyleFamily] | None = None) -> str:
    """The account's secret choice per family as a string of ``0``/``1`` (family order).

    Raises:
        ConfigError: an empty secret.
    """
    if not secret:
        raise ConfigError("style_bits needs the secret key bytes. Got an empty key.")
    fams = default_families() if families is None else families
    sub = hmac.new(secret, _DOMAIN, hashlib.sha256).digest()
    return "".join(str(hmac.new(sub, f"{account_id}|{f.family_id}".encode(), hashlib.sha256).digest()[0] & 1)
                   for f in fams)


# --------------------------------------------------------------------------- the scanner

@dataclass(frozen=True)
class _Form:
    family: int
    variant: int
    other: str          # the same form in the other variant (lower case)
    words: tuple[str, ...]
    contraction: bool   # variant 0 is a full form, variant 1 its contraction


class _Index:
    def __init__(self, families: Sequence[StyleFamily]) -> None:
        self.families = tuple(families)
        self.single: dict[str, _Form] = {}
        self.multi: dict[str, list[_Form]] = {}
        self.marks: dict[str, int] = {}    # one-character mark family id → its index
        for k, fam in enumerate(self.families):
            if fam.kind == "mark":
                self.marks[fam.family_id] = k
                continue
            contraction = fam.kind == "contraction"
            for pair in fam.forms:
                for v in (0, 1):
                    words = tuple(pair[v].split(" "))
                    form = _Form(k, v, pair[1 - v], words, contraction)
                    if len(words) == 1:
                        self.single[words[0]] = form
                    else:
                        self.multi.setdefault(words[0], []).append(form)


@cache
def _default_index() -> _Index:
    return _Index(default_families())


def _index_for(families: Sequence[StyleFamily] | None) -> _Index:
    return _default_index() if families is None else _Index(families)


def _case(word: str) -> str | None:
    if word.islower():
        return "lower"
    if len(word) > 1 and word.isupper():
        return "upper"
    if word[0].isupper() and (len(word) == 1 or not any(ch.isupper() for ch in word[1:])):
        return "title"
    return None  # camelCase and the like: an identifier, not prose


def _cased(form: str, case: str) -> str:
    if case == "upper":
        return form.upper()
    if case == "title":
        return form[0].upper() + form[1:]
    return form


@dataclass
class _State:
    fence: str = ""       # the opening fence while inside a fenced code block
    inline: int = 0       # length of the backtick run that opened inline code
    line_blank: bool = True
    before: str = ""      # the last two characters already consumed


# (family, variant, start, end, replacement for the other variant) → replacement text or None
_OnMatch = Callable[[int, int, str], "str | None"]


class _Scanner:
    """Walks text word by word; knows code spans, glue and the contraction rules."""

    def __init__(self, index: _Index) -> None:
        self.index = index
        self.state = _State()

    def run(self, text: str, final: bool, on_match: _OnMatch) -> tuple[str, int]:
        """Consume ``text`` as far as it can be decided; return (output, characters consumed)."""
        out: list[str] = []
        words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        pos = 0
        i = 0
        while i < len(words):
            s, e = words[i]
            if _may_go_on(text, e, final):
                break  # the word may go on in the next chunk
            self._gap(text[pos:s], out, on_match, word_follows=True)
            pos = s
            taken = self._word(text, words, i, final, on_match, out)
            if taken is None:
                break
            i += taken
            pos = words[i - 1][1]
            self.state.before = (self.state.before + text[s:pos])[-2:]
            self.state.line_blank = False
        else:
            if final:
                self._gap(text[pos:], out, on_match, word_follows=False)
                pos = len(text)
        return "".join(out), pos

    def _gap(self, gap: str, out: list[str], on_match: _OnMatch, *, word_follows: bool) -> None:
        """Consume the text between two words: track code, rewrite list markers at line starts."""
        st = self.state
        last = 0
        edits: list[tuple[int, str]] = []
        if st.line_blank and not st.fence:  # only at the very start of the text
            self._list_marker(gap, 0, word_follows, on_match, edits)
        for m in _FENCE_OR_NEWLINE.finditer(gap):
            if gap[last:m.start()].strip():
                st.line_blank = False
            run = m.group()
            if run == "\n":
                st.line_blank, st.inline = True, 0
                if not st.fence:
                    self._list_marker(gap, m.end(), word_follows, on_match, edits)
            elif len(run) >= 3 and st.line_blank and not st.inline:
                if not st.fence:
                    st.fence = run
                elif run[0] == st.fence[0] and len(run) >= len(st.fence):
                    st.fence = ""
                st.line_blank = False
            elif not st.fence and run[0] == "`":
                st.inline = len(run) if not st.inline else (0 if st.inline == len(run) else st.inline)
                st.line_blank = False
            else:
                st.line_blank = False
            last = m.end()
        if gap[last:].strip():
            st.line_blank = False
        for at, marker in reversed(edits):
            gap = gap[:at] + marker + gap[at + 1:]
        out.append(gap)
        if gap:
            st.before = (st.before + gap)[-2:]

    def _list_marker(self, gap: str, start: int, word_follows: bool, on_match: _OnMatch,
                     edits: list[tuple[int, str]]) -> None:
        """A Markdown list item starting at ``gap[start]``: count or swap its marker."""
        m = _LIST_ITEM.match(gap, start)
        if m is None:
            return
        newline = gap.find("\n", m.end())
        line_end = len(gap) if newline < 0 else newline
        # When the line runs on into the next word, that word is the item's text; otherwise the
        # line must hold text that is not a horizontal rule ("* * *") or nothing (an empty item).
        if (newline >= 0 or not word_follows) and (
                not gap[m.end():line_end].strip() or _THEMATIC_BREAK.fullmatch(gap, start, line_end)):
            return
        bullet = m.group(1) is not None
        family = self.index.marks.get(MARK_BULLET if bullet else MARK_NUMBERED)
        if family is None:
            return
        at = m.start(1) if bullet else m.start(2)
        forms = self.index.families[family].forms[0]
        variant = forms.index(gap[at])
        replaced = on_match(family, variant, forms[1 - variant])
        if replaced is not None:
            edits.append((at, replaced))

    def _glued(self, text: str, e: int) -> bool:
        before = self.state.before  # the gap before the word is consumed by now
        # alnum covers digits and non-ASCII letters: "colorée" is French, not a spelling choice
        if before[-1:] in _GLUE_BEFORE or before[-1:].isalnum():
            return True
        if before[-1:] == "." and before[:1].isalnum():
            return True  # obj.color
        after = text[e:e + 2]
        if after[:1] in _GLUE_AFTER or after[:1].isalnum():
            return True
        return after[:1] == "." and after[1:2].isalnum()  # color.red

    def _word(self, text: str, words: list[tuple[int, int]], i: int, final: bool,
              on_match: _OnMatch, out: list[str]) -> int | None:
        """Handle words[i]; return how many words were consumed, or None for 'need more text'."""
        s, e = words[i]
        raw = text[s:e]
        st = self.state
        if st.fence or st.inline or self._glued(text, e):
            out.append(raw)
            return 1
        low = raw.lower().replace("\u2019", "'")
        case = _case(raw)
        candidates = self.index.multi.get(low, []) if case else []
        single = self.index.single.get(low) if case else None
        if not candidates and single is None:
            out.append(self._apostrophes(raw, on_match))
            return 1
        ahead = _next_words(text, words, i, 2, final)
        if ahead is None:
            return None
        for form in candidates:
            n = len(form.words)
            rest = ahead[:n - 1]
            if len(rest) < n - 1 or any(sep != " " or w.lower() != fw or _case(w) not in (case, "lower")
                                        for (sep, w), fw in zip(rest, form.words[1:], strict=True)):
                continue
            if form.contraction and not _contractable(ahead[n - 1:]):
                continue
            end = words[i + n - 1][1]
            if self._glued(text, end):
                continue
            replaced = on_match(form.family, form.variant, _cased(form.other, case or "lower"))
            out.append(self._apostrophes(text[s:end] if replaced is None else replaced, on_match))
            return n
        if single is not None and _eligible(single, low, ahead):
            replaced = on_match(single.family, single.variant, _cased(single.other, case or "lower"))
            out.append(self._apostrophes(raw if replaced is None else replaced, on_match))
            return 1
        out.append(self._apostrophes(raw, on_match))
        return 1

    def _apostrophes(self, words: str, on_match: _OnMatch) -> str:
        """Count or swap each apostrophe between two letters (after any contraction rewrite)."""
        family = self.index.marks.get(MARK_APOSTROPHE)
        if family is None or ("'" not in words and "\u2019" not in words):
            return words
        forms = self.index.families[family].forms[0]

        def swap(m: re.Match[str]) -> str:
            variant = forms.index(m.group())
            replaced = on_match(family, variant, forms[1 - variant])
            return m.group() if replaced is None else replaced

        return _IN_WORD_APOSTROPHE.sub(swap, words)


def _eligible(form: _Form, low: str, ahead: Sequence[tuple[str, str]]) -> bool:
    if not form.contraction:
        return True
    # "cannot." stays (nothing to contract before); "can't you" stays (no "cannot you").
    return _contractable(ahead) if form.variant == 0 else _expandable(low, ahead)


def _next_words(text: str, words: list[tuple[int, int]], i: int, n: int,
                final: bool) -> list[tuple[str, str]] | None:
    """Up to n (separator, word) pairs after words[i]; None while more text could change them."""
    got: list[tuple[str, str]] = []
    for j in range(i + 1, i + 1 + n):
        if j >= len(words):
            if not final and not re.search(r"[^\sA-Za-z'\u2019]", text[words[j - 1][1]:]):
                return None  # only spaces so far: the next word may still come
            break
        s, e = words[j]
        if _may_go_on(text, e, final):
            return None
        got.append((text[words[j - 1][1]:s], text[s:e]))
    return got


def _may_go_on(text: str, end: int, final: bool) -> bool:
    """Whether a word ending at ``end`` may continue in the next chunk ("isn" + "'" + "t")."""
    return not final and (end == len(text) or (end == len(text) - 1 and text[end] in "'\u2019"))


def _contractable(ahead: Sequence[tuple[str, str]]) -> bool:
    # "it is" → "it's" only before a word: "as it is." must stay.
    return bool(ahead) and ahead[0][0] == " "


def _expandable(short: str, ahead: Sequence[tuple[str, str]]) -> bool:
    if not ahead or ahead[0][0] != " ":
        return True
    nxt = ahead[0][1].lower()
    if nxt in _SUBJECTS:
        return False  # "don't you", "isn't it"
    return not (short.endswith("'s") and nxt in _HAS_NOT_IS)


# --------------------------------------------------------------------------- rewrite / count

class StyleRewriter:
    """Rewrite a stream of text to one account's style choices.

    Every bit 1: British spelling, the contracted form, and the typographic apostrophe.

    >>> from distillguard.fingerprint.style_lexicon import default_families
    >>> rw = StyleRewriter("1" * len(default_families()))
    >>> rw.feed("The color of it is ") + rw.feed("nice.") + rw.finish()
    'The colour of it’s nice.'
    """

    def __init__(self, bits: str, families: Sequence[StyleFamily] | None = None) -> None:
        self._index = _index_for(families)
        if len(bits) != len(self._index.families) or set(bits) - {"0", "1"}:
            raise ConfigError(f"StyleRewriter needs one 0/1 character per style family "
                              f"({len(self._index.families)}). Got {len(bits)} characters instead.")
        self._bits = bits
        self._scanner = _Scanner(self._index)
        self._pending = ""
        self.changed = 0

    def _replace(self, family: int, variant: int, other: str) -> str | None:
        if int(self._bits[family]) == variant:
            return None
        self.changed += 1
        return other

    def feed(self, chunk: str) -> str:
        """Add text; return the part of the rewritten stream that is now settled."""
        self._pending += chunk
        out, used = self._scanner.run(self._pending, False, self._replace)
        self._pending = self._pending[used:]
        return out

    def finish(self) -> str:
        """Return the rest of the rewritten stream."""
        out, _ = self._scanner.run(self._pending, True, self._replace)
        self._pending = ""
        return out


def rewrite_style(text: str, bits: str, families: Sequence[StyleFamily] | None = None) -> str:
    """Rewrite a whole text to the style choices ``bits`` (see :func:`style_bits`)."""
    rw = StyleRewriter(bits, families)
    return rw.feed(text) + rw.finish()


@dataclass(frozen=True)
class StyleCounts:
    """How often a text used each variant of each style family (family order)."""

    n0: tuple[int, ...]
    n1: tuple[int, ...]

    @property
    def families_used(self) -> int:
        return sum(1 for a, b in zip(self.n0, self.n1, strict=True) if a != b)


def count_style(texts: Iterable[str], families: Sequence[StyleFamily] | None = None) -> StyleCounts:
    """Count the style occurrences in ``texts`` (the same ones the rewriter would touch)."""
    index = _index_for(families)
    n = np.zeros((2, len(index.families)), dtype=np.int64)

    def tally(family: int, variant: int, _other: str) -> None:
        n[variant, family] += 1
        return None

    for text in texts:
        _Scanner(index).run(text, True, tally)
    return StyleCounts(n0=tuple(int(x) for x in n[0]), n1=tuple(int(x) for x in n[1]))


# --------------------------------------------------------------------------- the test

@dataclass(frozen=True)
class StyleResult:
    """Which account's style choices a suspect's text follows, with exact, corrected p-values.

    ``per_account`` holds, per account: families the suspect used with a net preference
    (``families``), how many of them agree with the account's bits (``agree``), the statistic,
    the exact p-value and its Holm-corrected value.
    """

    families_used: int
    tokens_counted: int
    per_account: dict[str, dict[str, float | int]] = field(default_factory=dict)
    traced_account: str | None = None
    p_value: float = 1.0
    log10_p_value: float = 0.0
    evidence: tuple[str, ...] = ()
    method: str = ("exact sign-flip test of the suspect's style preferences against the account's "
                   "key bits (weights clipped at ±clip); Holm correction over accounts")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _sign_flip_log_sf(weights: np.ndarray, observed: int) -> float:
    """log P(Σ ε_f w_f ≥ observed) for independent fair signs ε_f, exactly (w_f positive ints)."""
    total = int(weights.sum())
    if observed <= -total:
        return 0.0
    if observed > total:
        return -math.inf
    dist = np.zeros(2 * total + 1)
    dist[total] = 1.0
    for w in weights.tolist():
        dist = 0.5 * (np.roll(dist, w) + np.roll(dist, -w))  # no wrap: |sum| ≤ total
    # Every reachable sum has probability ≥ 2^-m, far above float underflow for any lexicon size.
    return math.log(min(1.0, float(dist[observed + total:].sum())))


def style_test(
    counts: StyleCounts,
    bits_by_account: Mapping[str, str],
    *,
    alpha: float = 1e-6,
    clip: int = 3,
    families: Sequence[StyleFamily] | None = None,
) -> StyleResult:
    """Test whether the suspect's style follows one account's secret choices.

    Args:
        counts: :func:`count_style` of the suspect's answers (any prompts).
        bits_by_account: every account that was ever served style canaries → its bits.
        alpha: significance level for naming an account (after Holm).
        clip: the most one family can weigh (a family used 50 times counts as ``clip``).

    Raises:
        InputError: no account, or bits of the wrong length.
        ConfigError: clip < 1.
    """
    if clip < 1:
        raise ConfigError(f"The 'clip' parameter of style_test must be an int ≥ 1. Got {clip!r} instead.")
    if not bits_by_account:
        raise InputError("style_test needs at least one account's style bits.")
    fams = default_families() if families is None else tuple(families)
    n0, n1 = np.asarray(counts.n0), np.asarray(counts.n1)
    if len(n0) != len(fams):
        raise InputError(f"Style counts cover {len(n0)} families; the lexicon has {len(fams)}.")
    pref = np.clip(n1 - n0, -clip, clip)       # + means the suspect prefers variant 1
    used = np.flatnonzero(pref)
    weights = np.abs(pref[used])
    rows: dict[str, dict[str, float | int]] = {}
    signs_of: dict[str, np.ndarray] = {}
    for account, bits in bits_by_account.items():
        if len(bits) != len(fams):
            raise InputError(f"Style bits of account {account!r} cover {len(bits)} families; the "
                             f"lexicon has {len(fams)} (a registry from another lexicon version?).")
        sign = np.array([1 if bits[k] == "1" else -1 for k in used], dtype=np.int64)
        stat = int((sign * pref[used]).sum())
        log_p = _sign_flip_log_sf(weights, stat) if len(used) else 0.0
        agree = int((sign * pref[used] > 0).sum())
        rows[account] = {"families": len(used), "agree": agree, "statistic": stat, "log_p": log_p}
        signs_of[account] = sign
    names = list(rows)
    holm = holm_log([float(rows[a]["log_p"]) for a in names]).tolist()
    for a, lp in zip(names, holm, strict=True):
        rows[a]["log10_p_holm"] = lp / math.log(10)
        rows[a]["p_value_holm"] = math.exp(lp)
    best = min(names, key=lambda a: float(rows[a]["log10_p_holm"]))
    best_log10 = float(rows[best]["log10_p_holm"])
    evidence = tuple(
        f"{'agrees' if s * pref[k] > 0 else 'differs'}: "
        f"{fams[k].forms[0][1] if s > 0 else fams[k].forms[0][0]!r} is {best}'s choice; suspect wrote "
        f"{fams[k].forms[0][0]!r} {int(n0[k])}×, {fams[k].forms[0][1]!r} {int(n1[k])}×"
        for k, s in sorted(zip(used.tolist(), signs_of[best].tolist(), strict=True),
                           key=lambda ks: -abs(int(pref[ks[0]])))[:12]
    )
    return StyleResult(
        families_used=len(used),
        tokens_counted=int(n0.sum() + n1.sum()),
        per_account=rows,
        traced_account=best if best_log10 <= math.log10(alpha) else None,
        p_value=10.0 ** best_log10,
        log10_p_value=best_log10,
        evidence=evidence,
    )
