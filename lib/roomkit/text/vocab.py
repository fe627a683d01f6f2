"""Room names → room types: a fixed vocabulary and the words listing plans print for each.

:func:`room_type` maps one name ("Master Bedroom", "Bed 2", "W.C.", "Kitchen/Diner",
"DiningRoom" as OCR glues it) to one of :data:`TYPES`, or ``None`` when the text names no room.
The first room word in the text decides ("Kitchen/Diner" is a kitchen, "Living/Dining" living).
"""
from __future__ import annotations

import difflib
import re

TYPES = (
    "bedroom",
    "bathroom",
    "kitchen",
    "living",
    "dining",
    "hall",
    "closet",
    "balcony",
    "laundry",
    "garage",
    "office",
    "storage",
    "other",
    "unknown",
)

# Words (lower case, matched at word starts; glued words like "DiningRoom" are found too).
# Longer, more specific words are tried before shorter ones that they contain.
_WORDS: dict[str, tuple[str, ...]] = {
    "bedroom": (
        "master bedroom", "bedroom", "bedrm", "bdrm", "bed room", "bed", "br", "master", "guest room",
        "nursery", "dormitory", "sleeping", "chambre", "schlafzimmer", "kinderzimmer",
    ),
    "bathroom": (
        "bathroom", "bath", "en suite", "en-suite", "ensuite", "shower", "toilet", "w.c", "wc",
        "powder", "lavatory", "cloakroom", "cloaks", "restroom", "washroom", "sauna", "badezimmer",
        "salle de bain",
    ),
    "kitchen": ("kitchenette", "kitchen", "kit", "galley", "cuisine", "küche", "kuche"),
    "living": (
        "living", "lounge", "reception", "family", "sitting", "drawing room", "great room",
        "front room", "day room", "sun room", "sunroom", "conservatory", "salon", "séjour",
        "wohnzimmer", "media room", "tv room", "playroom", "play room", "games room", "snug", "den",
    ),
    "dining": ("dining", "diner", "breakfast", "eating", "salle à manger"),
    "hall": (
        "hallway", "hall", "entrance", "entry", "foyer", "landing", "corridor", "lobby",
        "vestibule", "passage", "gallery", "flur", "stairs", "staircase", "mud room", "mudroom",
    ),
    "closet": (
        "walk-in", "walk in", "w.i.c", "wic", "w/i", "closet", "clo", "wardrobe", "ward",
        "cupboard", "cpd", "cup", "cl", "linen", "dressing",
    ),
    "balcony": ("balcony", "terrace", "deck", "patio", "veranda", "verandah", "loggia", "porch", "roof garden"),
    "laundry": ("laundry", "utility", "util", "wash room"),
    "garage": ("garage", "carport", "car port", "parking"),
    "office": ("office", "study", "library", "workroom", "work room", "büro"),
    "storage": (
        "storage", "store", "storeroom", "pantry", "larder", "shed", "attic", "loft", "cellar",
        "basement", "boiler", "plant", "bin", "stor",
    ),
    "other": ("gym", "cinema", "bar", "workshop", "lift", "elevator", "void", "studio", "room"),
}

#: Modifiers that name a room only when nothing stronger does ("Family Bathroom" is a bathroom,
#: "Family Room" living; "Master Bedroom" a bedroom, "Master" alone too).
_WEAK = {"master", "family", "breakfast", "room", "guest room", "plant", "bin", "gallery", "sitting"}
_PATTERNS: list[tuple[re.Pattern[str], str, bool]] = []
for _type, _words in _WORDS.items():
    for _w in _words:
        # Short abbreviations must stand alone; longer words may be glued ("DiningRoom").
        esc = re.escape(_w).replace(r"\ ", r"\s*")
        tail = r"(?![a-z])" if len(_w) <= 4 else ""
        _PATTERNS.append((re.compile(rf"(?<![a-z]){esc}{tail}"), _type, _w in _WEAK))
_PATTERNS.sort(key=lambda p: -len(p[0].pattern))

#: OCR misreadings of the common room words ("KTHEN", "BEDRCOM", "BALOONY", "TERACE", "UTLITY")
#: are read as the word they are closest to when no word matches exactly: read words of at least
#: FUZZY_MIN_READ letters, similar by at least FUZZY_RATIO (difflib's ratio) to one of
#: :data:`FUZZY_WORDS`. Short and rare words stay exact ("FLOR" is no "FLUR", "MEDROOM" no
#: "MUDROOM").
FUZZY_MIN_READ = 5
FUZZY_RATIO = 0.8
FUZZY_WORDS = (
    "bedroom", "bathroom", "shower", "toilet", "ensuite", "kitchen", "living", "lounge", "reception",
    "dining", "hallway", "entrance", "corridor", "landing", "closet", "wardrobe", "dressing",
    "balcony", "terrace", "laundry", "utility", "garage", "office", "storage", "pantry",
)
_FUZZY: dict[str, str] = {w: kind for kind, words in _WORDS.items() for w in words if w in FUZZY_WORDS}


def room_type(name: str | None) -> str | None:
    """The vocabulary type a printed name says, or ``None`` if it names no room."""
    if not name:
        return None
    s = name.lower().replace("\n", " ")
    best: tuple[bool, int, int, str] | None = None  # (weak, position, -length, type)
    for pattern, kind, weak in _PATTERNS:
        m = pattern.search(s)
        if m:
            key = (weak, m.start(), -(m.end() - m.start()), kind)
            if best is None or key < best:
                best = key
    if best is not None:
        return best[3]
    for token in re.findall(r"[^\W\d_]+", s):
        if len(token) >= FUZZY_MIN_READ:
            close = difflib.get_close_matches(token, _FUZZY, n=1, cutoff=FUZZY_RATIO)
            if close:
                return _FUZZY[close[0]]
    return None


def is_room_name(text: str) -> bool:
    """Whether a text line names a room (by the vocabulary)."""
    return room_type(text) is not None
