"""The style families of keyed style canaries: pairs of interchangeable ways to write a word.

Each family is one independent choice between two forms that mean exactly the same: American or
British spelling (``color``/``colour``, ``organize``/``organise``, ``center``/``centre``,
``traveled``/``travelled``, …), contracted or full forms (``don't``/``do not``), the two
Markdown list markers that render as the same list (``- item``/``* item``,
``1. item``/``1) item``), and the straight or typographic apostrophe inside a word
(``don't``/``don’t``, ``model's``/``model’s``). A family
lists every surface form it covers as (variant 0, variant 1) pairs, so ``colors``, ``colored`` and
``colorful`` follow the same key bit as ``color``.

Why these and not synonyms: a synonym is never exact (``big``/``large`` differ in idiom), while
a spelling or a contraction changes no meaning and costs a wrongly flagged user nothing. Words
whose two spellings mean different things (``meter``, ``practice``/``practise``, ``program``,
``check``) or where only one form is standard (``advise``, ``size``) are left out. Contractions
are only formed where the full form is followed by a word (``as it is.`` stays) and only
expanded where that stays grammatical (not ``isn't it``, not ``it's been``) — the rules live in
:mod:`distillguard.fingerprint.style`.

Why the list markers and the apostrophe: a spelling family appears in a few answers out of
ten, so a small student that learned the style still uses only a quarter of the families in a
thousand answers, and the test's power is capped by the number of families used. List markers
and in-word apostrophes (contractions, possessives) appear in most answers of an
instruction-tuned model, as single characters in fixed places that even a tiny student copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

__all__ = ["MARK_APOSTROPHE", "MARK_BULLET", "MARK_NUMBERED", "StyleFamily", "default_families"]


@dataclass(frozen=True)
class StyleFamily:
    """One keyed choice: ``forms`` maps each surface form (lower case) of variant 0 to variant 1.

    ``kind`` is ``spelling`` (one word either way), ``contraction`` (variant 0 is the full
    form, one or two words; variant 1 the contraction) or ``mark`` (one character with a
    scanner rule of its own, found by ``family_id``: the bullet ``-``/``*`` or the delimiter
    after an item number ``.``/``)`` of a list item at the start of a line, or an apostrophe
    between two letters ``'``/``’``).
    """

    family_id: str
    kind: str
    forms: tuple[tuple[str, str], ...]


# -ize / -ise verbs whose British -ise form is standard; words that are -ise (advise, exercise)
# or -ize (size, seize) in both are not listed.
_IZE_STEMS = (
    "apolog", "author", "capital", "categor", "character", "civil", "critic", "custom", "econom",
    "emphas", "final", "general", "global", "harmon", "ideal", "initial", "legal", "local",
    "maxim", "memor", "minim", "mobil", "modern", "neutral", "normal", "optim", "organ",
    "personal", "popular", "priorit", "real", "recogn", "revolution", "sanit", "serial",
    "special", "stabil", "standard", "summar", "symbol", "synchron", "util", "visual",
    "familiar", "fantas", "formal", "hospital", "jeopard", "scrutin", "sympath", "theor",
    "vocal", "agon", "amort", "appet", "central", "commercial", "democrat", "energ", "fertil",
    "human", "industrial", "italic", "material", "moral", "penal", "polar", "privat",
    "rational", "steril", "subsid", "urban", "vandal", "victim", "digit", "monet", "parallel",
)
_IZE_SUFFIXES = (("ize", "ise"), ("izes", "ises"), ("ized", "ised"), ("izing", "ising"),
                 ("ization", "isation"), ("izations", "isations"), ("izer", "iser"),
                 ("izers", "isers"), ("izable", "isable"))
_YZE_STEMS = ("anal", "paral", "catal", "dial", "electrol", "hydrol")
_YZE_SUFFIXES = (("yze", "yse"), ("yzes", "yses"), ("yzed", "ysed"), ("yzing", "ysing"),
                 ("yzer", "yser"), ("yzers", "ysers"))
# -or / -our nouns; "humorous", "honorary", "laborious" are the same in both and not formed.
_OUR_STEMS = ("col", "behavi", "fav", "hon", "lab", "neighb", "flav", "hum", "rum", "harb",
              "vap", "vig", "endeav", "savi", "arm", "parl", "od", "val", "clam", "tum", "cand",
              "splend", "rig", "ferv")
_OUR_SUFFIXES = (("or", "our"), ("ors", "ours"), ("ored", "oured"), ("oring", "ouring"),
                 ("orful", "ourful"), ("orfully", "ourfully"), ("orless", "ourless"),
                 ("oral", "oural"), ("orally", "ourally"), ("orhood", "ourhood"),
                 ("orhoods", "ourhoods"), ("orite", "ourite"), ("orites", "ourites"),
                 ("orable", "ourable"), ("orably", "ourably"), ("orist", "ourist"))
# The "or" stems are short: only forms that are real words are kept (see _our_forms).
_OUR_WORDS = frozenset({
    "color", "colors", "colored", "coloring", "colorful", "colorfully", "colorless",
    "behavior", "behaviors", "behavioral", "behaviorally",
    "favor", "favors", "favored", "favoring", "favorite", "favorites", "favorable", "favorably",
    "honor", "honors", "honored", "honoring", "honorable", "honorably",
    "labor", "labors", "labored", "laboring",
    "neighbor", "neighbors", "neighborhood", "neighborhoods", "neighboring",
    "flavor", "flavors", "flavored", "flavoring", "flavorful", "flavorless",
    "humor", "humors", "humored", "rumor", "rumors", "rumored", "harbor", "harbors", "harbored",
    "harboring", "vapor", "vapors", "vigor", "endeavor", "endeavors", "endeavored",
    "endeavoring", "savior", "armor", "armored", "parlor", "parlors", "odor", "odors",
    "odorless", "valor", "clamor", "tumor", "tumors", "candor", "splendor", "rigor", "fervor",
})
# -er / -re nouns and the unit names built on "meter" (the device "meter" is the same in both).
_RE_STEMS = ("cent", "theat", "fib", "lit", "calib", "somb", "lust", "sab", "spect", "meag",
             "kilomet", "centimet", "millimet", "micromet", "nanomet", "sepulch")
_RE_SUFFIXES = (("er", "re"), ("ers", "res"), ("ered", "red"), ("ering", "ring"))
_RE_WORDS = frozenset({
    "center", "centers", "centered", "centering", "theater", "theaters", "fiber", "fibers",
    "liter", "liters", "caliber", "somber", "luster", "saber", "sabers", "specter", "specters",
    "meager", "kilometer", "kilometers", "centimeter", "centimeters", "millimeter",
    "millimeters", "micrometer", "micrometers", "nanometer", "nanometers", "sepulcher",
})
# Verbs whose final l doubles in British English before -ed/-ing/-er.
_LL_STEMS = ("travel", "cancel", "model", "label", "fuel", "signal", "level", "total",
             "dial", "equal", "marvel", "tunnel", "channel", "funnel", "panel", "pedal", "shovel",
             "snorkel", "swivel", "unravel", "counsel", "jewel", "duel", "grovel", "rival")
_LL_SUFFIXES = (("ed", "led"), ("ing", "ling"), ("er", "ler"), ("ers", "lers"))
_LL_SKIP = frozenset({"totaler", "totalers", "equaler", "equalers", "channeler", "panelers",
                      "paneler", "rivaler", "rivalers", "leveler", "levelers", "dialer",
                      "dialers", "signaler", "signalers", "pedaler", "pedalers"})
# Single pairs, each with its own inflections.
_PAIRS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("defense", (("defense", "defence"), ("defenses", "defences"), ("defenseless", "defenceless"))),
    ("offense", (("offense", "offence"), ("offenses", "offences"))),
    ("pretense", (("pretense", "pretence"), ("pretenses", "pretences"))),
    ("catalog", (("catalog", "catalogue"), ("catalogs", "catalogues"), ("cataloged", "catalogued"),
                 ("cataloging", "cataloguing"))),
    ("analog", (("analog", "analogue"), ("analogs", "analogues"))),
    ("gray", (("gray", "grey"), ("grays", "greys"), ("grayish", "greyish"),
              ("grayscale", "greyscale"))),
    ("aging", (("aging", "ageing"),)),
    ("judgment", (("judgment", "judgement"), ("judgments", "judgements"),
                  ("judgmental", "judgemental"))),
    ("acknowledgment", (("acknowledgment", "acknowledgement"),
                        ("acknowledgments", "acknowledgements"))),
    ("enroll", (("enroll", "enrol"), ("enrolls", "enrols"), ("enrollment", "enrolment"),
                ("enrollments", "enrolments"))),
    ("fulfill", (("fulfill", "fulfil"), ("fulfills", "fulfils"), ("fulfillment", "fulfilment"))),
    ("skillful", (("skillful", "skilful"), ("skillfully", "skilfully"))),
    ("installment", (("installment", "instalment"), ("installments", "instalments"))),
    ("mold", (("mold", "mould"), ("molds", "moulds"), ("molded", "moulded"),
              ("molding", "moulding"), ("moldy", "mouldy"))),
    ("plow", (("plow", "plough"), ("plows", "ploughs"), ("plowed", "ploughed"))),
    ("cozy", (("cozy", "cosy"), ("cozier", "cosier"), ("coziest", "cosiest"))),
    ("pajamas", (("pajamas", "pyjamas"),)),
    ("artifact", (("artifact", "artefact"), ("artifacts", "artefacts"))),
    ("toward", (("toward", "towards"),)),
    ("afterward", (("afterward", "afterwards"),)),
    ("amid", (("amid", "amidst"),)),
    ("among", (("among", "amongst"),)),
    ("likable", (("likable", "likeable"),)),
    ("sizable", (("sizable", "sizeable"),)),
    ("livable", (("livable", "liveable"),)),
    ("maneuver", (("maneuver", "manoeuvre"), ("maneuvers", "manoeuvres"),
                  ("maneuvered", "manoeuvred"), ("maneuvering", "manoeuvring"))),
    ("estrogen", (("estrogen", "oestrogen"),)),
    ("pediatric", (("pediatric", "paediatric"), ("pediatrician", "paediatrician"),
                   ("pediatricians", "paediatricians"))),
    ("encyclopedia", (("encyclopedia", "encyclopaedia"), ("encyclopedias", "encyclopaedias"))),
    ("anemia", (("anemia", "anaemia"),)),
    ("anesthesia", (("anesthesia", "anaesthesia"), ("anesthetic", "anaesthetic"))),
    ("esthetic", (("esthetic", "aesthetic"),)),
    ("mustache", (("mustache", "moustache"),)),
    ("donut", (("donut", "doughnut"), ("donuts", "doughnuts"))),
    ("jewelry", (("jewelry", "jewellery"),)),
    ("woolen", (("woolen", "woollen"),)),
    ("tranquility", (("tranquility", "tranquillity"),)),
    ("willful", (("willful", "wilful"), ("willfully", "wilfully"))),
    ("percent", (("percent", "per cent"),)),
)
# Contractions: (full form, contraction). The full form is matched as whole words.
_CONTRACTIONS = (
    ("do not", "don't"), ("does not", "doesn't"), ("did not", "didn't"), ("is not", "isn't"),
    ("are not", "aren't"), ("was not", "wasn't"), ("were not", "weren't"), ("cannot", "can't"),
    ("will not", "won't"), ("would not", "wouldn't"), ("should not", "shouldn't"),
    ("could not", "couldn't"), ("have not", "haven't"), ("has not", "hasn't"),
    ("it is", "it's"), ("i am", "i'm"), ("you are", "you're"), ("we are", "we're"),
    ("they are", "they're"), ("there is", "there's"), ("that is", "that's"),
    ("what is", "what's"), ("here is", "here's"), ("i will", "i'll"), ("you will", "you'll"),
    ("we will", "we'll"), ("it will", "it'll"), ("they will", "they'll"),
)

# One-character marks. The family ids name the scanner's rule (distillguard.fingerprint.style):
# Markdown list markers (CommonMark: either form opens the same kind of list) and the apostrophe
# between two letters (a closing quote after a word is ambiguous with it and stays).
MARK_BULLET, MARK_NUMBERED, MARK_APOSTROPHE = "markdown-bullet", "markdown-numbered", "apostrophe"
_MARKS = ((MARK_BULLET, (("-", "*"),)), (MARK_NUMBERED, ((".", ")"),)),
          (MARK_APOSTROPHE, (("'", "\u2019"),)))


def _suffixed(stems: tuple[str, ...], suffixes: tuple[tuple[str, str], ...],
              keep: frozenset[str] | None = None,
              skip: frozenset[str] = frozenset()) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    out = []
    for stem in dict.fromkeys(s for s in stems if s):
        forms = tuple((stem + a, stem + b) for a, b in suffixes
                      if (keep is None or stem + a in keep) and stem + a not in skip)
        if forms:
            out.append((forms[0][0], forms))
    return out


@cache
def default_families() -> tuple[StyleFamily, ...]:
    """The packaged style families (deterministic order; the family id is its first form)."""
    spelling = (_suffixed(_IZE_STEMS, _IZE_SUFFIXES) + _suffixed(_YZE_STEMS, _YZE_SUFFIXES)
                + _suffixed(_OUR_STEMS, _OUR_SUFFIXES, keep=_OUR_WORDS)
                + _suffixed(_RE_STEMS, _RE_SUFFIXES, keep=_RE_WORDS)
                + _suffixed(_LL_STEMS, _LL_SUFFIXES, skip=_LL_SKIP) + list(_PAIRS))
    families = [StyleFamily(family_id=fid, kind="spelling", forms=forms) for fid, forms in spelling]
    families += [StyleFamily(family_id=full, kind="contraction", forms=((full, short),))
                 for full, short in _CONTRACTIONS]
    # Appended last: an account's bits for the older families keep their positions and values.
    families += [StyleFamily(family_id=fid, kind="mark", forms=forms) for fid, forms in _MARKS]
    return tuple(families)
