"""How a name is read for the look-up: characters, pinyin read as words, initials, other readings.

Everything here is pure: a name goes in, the tokens the index keeps come out, and a query is read
the same way. Tokens are short words separated by spaces, so that every engine (SQLite FTS5's
``ascii`` tokenizer, PostgreSQL's ``simple`` text search) splits them alike and a look-up is a
phrase of consecutive tokens:

- characters as overlapping pairs (长城建设 → 长城 城建 建设): any run of two or more characters is
  a phrase of pairs, found through the index instead of by scanning every name;
- pinyin syllables, the name read as words (pypinyin's phrase dictionary: 银行 yin hang, 重庆
  chong qing, 长沙 chang sha, 会计 kuai ji), and after a barrier a short window around each
  character that has other readings, read that other way (so 重庆 is also found as zhongqing);
- initials as overlapping pairs (cqccjs → cq qc cc cj js), letters of words in Latin script whole.

Reading a name with pypinyin costs about 200 µs (4,800 names/s); the reading of each word is the
same in every name, so it is kept per word (``_WORDS``) and a name costs one segmentation (mmseg,
about 7 µs) and a few dictionary look-ups: 117,000 names/s on synthetic names (benchmarks/search.py).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from pypinyin import Style, lazy_pinyin
from pypinyin import pinyin as heteronyms
from pypinyin.seg.mmseg import seg

# Every toneless syllable of pypinyin's character dictionary (ü written v, as pypinyin writes it).
SYLLABLES = frozenset(
    [
        "a",
        "ai",
        "an",
        "ang",
        "ao",
        "ba",
        "bai",
        "ban",
        "bang",
        "bao",
        "bei",
        "ben",
        "beng",
        "bi",
        "bian",
        "biang",
        "biao",
        "bie",
        "bin",
        "bing",
        "bo",
        "bong",
        "bu",
        "ca",
        "cai",
        "can",
        "cang",
        "cao",
        "ce",
        "cei",
        "cen",
        "ceng",
        "cha",
        "chai",
        "chan",
        "chang",
        "chao",
        "che",
        "chen",
        "cheng",
        "chi",
        "chong",
        "chou",
        "chu",
        "chua",
        "chuai",
        "chuan",
        "chuang",
        "chui",
        "chun",
        "chuo",
        "ci",
        "cong",
        "cou",
        "cu",
        "cuan",
        "cui",
        "cun",
        "cuo",
        "da",
        "dai",
        "dan",
        "dang",
        "dao",
        "de",
        "dei",
        "den",
        "deng",
        "di",
        "dia",
        "dian",
        "diao",
        "die",
        "din",
        "ding",
        "diu",
        "dong",
        "dou",
        "du",
        "duan",
        "dui",
        "dun",
        "duo",
        "e",
        "ei",
        "en",
        "eng",
        "er",
        "fa",
        "fan",
        "fang",
        "fei",
        "fen",
        "feng",
        "fiao",
        "fo",
        "fou",
        "fu",
        "ga",
        "gai",
        "gan",
        "gang",
        "gao",
        "ge",
        "gei",
        "gen",
        "geng",
        "gong",
        "gou",
        "gu",
        "gua",
        "guai",
        "guan",
        "guang",
        "gui",
        "gun",
        "guo",
        "ha",
        "hai",
        "han",
        "hang",
        "hao",
        "he",
        "hei",
        "hen",
        "heng",
        "hm",
        "hng",
        "hong",
        "hou",
        "hu",
        "hua",
        "huai",
        "huan",
        "huang",
        "hui",
        "hun",
        "huo",
        "ji",
        "jia",
        "jian",
        "jiang",
        "jiao",
        "jie",
        "jin",
        "jing",
        "jiong",
        "jiu",
        "ju",
        "juan",
        "jue",
        "jun",
        "ka",
        "kai",
        "kan",
        "kang",
        "kao",
        "ke",
        "kei",
        "ken",
        "keng",
        "kong",
        "kou",
        "ku",
        "kua",
        "kuai",
        "kuan",
        "kuang",
        "kui",
        "kun",
        "kuo",
        "la",
        "lai",
        "lan",
        "lang",
        "lao",
        "le",
        "lei",
        "len",
        "leng",
        "li",
        "lia",
        "lian",
        "liang",
        "liao",
        "lie",
        "lin",
        "ling",
        "liu",
        "lo",
        "long",
        "lou",
        "lu",
        "luan",
        "lun",
        "luo",
        "lv",
        "lve",
        "m",
        "ma",
        "mai",
        "man",
        "mang",
        "mao",
        "me",
        "mei",
        "men",
        "meng",
        "mi",
        "mian",
        "miao",
        "mie",
        "min",
        "ming",
        "miu",
        "mo",
        "mou",
        "mu",
        "n",
        "na",
        "nai",
        "nan",
        "nang",
        "nao",
        "ne",
        "nei",
        "nen",
        "neng",
        "ng",
        "ni",
        "nia",
        "nian",
        "niang",
        "niao",
        "nie",
        "nin",
        "ning",
        "niu",
        "nong",
        "nou",
        "nu",
        "nuan",
        "nun",
        "nuo",
        "nv",
        "nve",
        "o",
        "ou",
        "pa",
        "pai",
        "pan",
        "pang",
        "pao",
        "pei",
        "pen",
        "peng",
        "pi",
        "pian",
        "piao",
        "pie",
        "pin",
        "ping",
        "po",
        "pou",
        "pu",
        "qi",
        "qia",
        "qian",
        "qiang",
        "qiao",
        "qie",
        "qin",
        "qing",
        "qiong",
        "qiu",
        "qu",
        "quan",
        "que",
        "qun",
        "ran",
        "rang",
        "rao",
        "re",
        "ren",
        "reng",
        "ri",
        "rong",
        "rou",
        "ru",
        "rua",
        "ruan",
        "rui",
        "run",
        "ruo",
        "sa",
        "sai",
        "san",
        "sang",
        "sao",
        "se",
        "sen",
        "seng",
        "sha",
        "shai",
        "shan",
        "shang",
        "shao",
        "she",
        "shei",
        "shen",
        "sheng",
        "shi",
        "shou",
        "shu",
        "shua",
        "shuai",
        "shuan",
        "shuang",
        "shui",
        "shun",
        "shuo",
        "si",
        "song",
        "sou",
        "su",
        "suan",
        "sui",
        "sun",
        "suo",
        "ta",
        "tai",
        "tan",
        "tang",
        "tao",
        "te",
        "tei",
        "teng",
        "ti",
        "tian",
        "tiao",
        "tie",
        "ting",
        "tong",
        "tou",
        "tu",
        "tuan",
        "tui",
        "tun",
        "tuo",
        "wa",
        "wai",
        "wan",
        "wang",
        "wei",
        "wen",
        "weng",
        "wo",
        "wong",
        "wu",
        "xi",
        "xia",
        "xian",
        "xiang",
        "xiao",
        "xie",
        "xin",
        "xing",
        "xiong",
        "xiu",
        "xu",
        "xuan",
        "xue",
        "xun",
        "ya",
        "yan",
        "yang",
        "yao",
        "ye",
        "yi",
        "yin",
        "ying",
        "yo",
        "yong",
        "you",
        "yu",
        "yuan",
        "yue",
        "yun",
        "za",
        "zai",
        "zan",
        "zang",
        "zao",
        "ze",
        "zei",
        "zen",
        "zeng",
        "zha",
        "zhai",
        "zhan",
        "zhang",
        "zhao",
        "zhe",
        "zhei",
        "zhen",
        "zheng",
        "zhi",
        "zhong",
        "zhou",
        "zhu",
        "zhua",
        "zhuai",
        "zhuan",
        "zhuang",
        "zhui",
        "zhun",
        "zhuo",
        "zi",
        "zong",
        "zou",
        "zu",
        "zuan",
        "zui",
        "zun",
        "zuo",
    ]
)
_LONGEST = max(map(len, SYLLABLES))
_PREFIXES = frozenset(s[:n] for s in SYLLABLES for n in range(1, len(s) + 1))
_HAN_CHAR = re.compile(r"[\u3400-\u9fff\U00020000-\U0002fa1f]")
_RUNS = re.compile(r"([\u3400-\u9fff\U00020000-\U0002fa1f]+)|([^\u3400-\u9fff\U00020000-\U0002fa1f]+)")
BARRIER = "qqq"  # not a syllable: keeps a phrase from running across two readings
WINDOW = 2  # syllables kept on each side of a character read another way
COMMON_READINGS = 3
LONGEST_WORD = 3  # characters of a longer fixed expression (有限公司) have no other readings
MOST_ALTERNATIVES = 8  # other-reading windows per name: enough for real names, bounded for odd ones
_WORD_CACHE = 200_000  # distinct words whose reading is kept; a word's reading is ~100 bytes


def normal(text: str) -> str:
    """Full-width forms folded (ＡＢＣ → abc), lower case, letters and digits only: the one form
    both names and queries are compared in."""
    return "".join(c for c in unicodedata.normalize("NFKC", text).lower() if c.isalnum())


def pairs(text: str) -> list[str]:
    """Overlapping pairs of characters; a single character stands for itself."""
    if len(text) < 2:
        return [text] if text else []
    return [text[i : i + 2] for i in range(len(text) - 1)]


@lru_cache(maxsize=_WORD_CACHE)
def _word(word: str) -> tuple[str, ...]:
    return tuple(lazy_pinyin(word))


@lru_cache(maxsize=20_000)
def readings(char: str) -> tuple[str, ...]:
    """Every reading of one character (行: xing, hang, heng)."""
    found = heteronyms(char, style=Style.NORMAL, heteronym=True)[0]
    return tuple(r for r in found if r.isascii() and r.isalpha())


@dataclass(frozen=True)
class Reading:
    """A text read for the index: its syllables (one per character, a Latin word or number whole),
    the character each came from ('' for a Latin word), and the initials."""

    syllables: tuple[str, ...]
    sources: tuple[str, ...]
    word_sizes: tuple[int, ...]  # the length of the word each syllable was read in

    @property
    def initials(self) -> str:
        return "".join(s if not src else s[0] for s, src in zip(self.syllables, self.sources, strict=True))

    @property
    def full(self) -> str:
        return "".join(self.syllables)


def read(text: str) -> Reading:
    """The text read as words: 长沙会计师事务所 → chang sha kuai ji shi shi wu suo."""
    syllables: list[str] = []
    sources: list[str] = []
    sizes: list[int] = []
    for han, other in _RUNS.findall(normal(text)):
        if other:
            syllables.append(other)
            sources.append("")
            sizes.append(1)
            continue
        for word in seg.cut(han):
            said = _word(word)
            if len(said) != len(word):  # a character without a reading: keep it as it is
                said = tuple(lazy_pinyin(c)[0] for c in word)
            syllables.extend(said)
            sources.extend(word)
            sizes.extend([len(word)] * len(word))
    return Reading(tuple(syllables), tuple(sources), tuple(sizes))


def _alternatives(reading: Reading) -> list[list[str]]:
    """Windows of syllables around each character that has other readings, read that other way.

    A character read on its own is the likeliest to be read otherwise by someone typing, one in a
    fixed expression the least (in one longer than ``LONGEST_WORD``, such as 有限公司, never):
    windows are taken in that order, at most ``MOST_ALTERNATIVES``, of a character's
    ``COMMON_READINGS`` first readings (a dictionary lists rare ones too: 有 wei, 司 ci)."""
    found: list[list[str]] = []
    said = reading.syllables
    order = sorted(range(len(said)), key=lambda i: (reading.word_sizes[i], i))
    for i in order:
        char = reading.sources[i]
        if not char or reading.word_sizes[i] > LONGEST_WORD:
            continue
        for other in readings(char)[:COMMON_READINGS]:
            if other == said[i]:
                continue
            window = [*said[max(0, i - WINDOW) : i], other, *said[i + 1 : i + 1 + WINDOW]]
            found.append(window)
            if len(found) == MOST_ALTERNATIVES:
                return found
    return found


@dataclass(frozen=True)
class Document:
    """What the index keeps of one subject, one space-separated text per indexed column."""

    chars: str
    syllables: str
    initials: str
    rep: str
    pinyin: str


def document(name: str, representative: str | None) -> Document:
    reading = read(name)
    said = " ".join(reading.syllables)
    for window in _alternatives(reading):
        said += f" {BARRIER} " + " ".join(window)
    rep = ""
    if representative:
        rep_reading = read(representative)
        rep = " ".join(pairs(normal(representative))) + f" {BARRIER} " + " ".join(rep_reading.syllables)
    return Document(
        chars=" ".join(pairs(normal(name))),
        syllables=said,
        initials=" ".join(pairs(reading.initials)),
        rep=rep,
        pinyin=reading.full,
    )


def has_han(text: str) -> bool:
    return _HAN_CHAR.search(text) is not None


def segment(letters: str) -> list[str] | None:
    """Letters typed as pinyin, cut into the fewest syllables (the last may be a syllable's
    beginning, still being typed): changcheng → chang cheng, xian → xian, changch → chang ch;
    None when they are not pinyin."""
    n = len(letters)
    best: list[list[str] | None] = [None] * (n + 1)
    best[0] = []
    for start in range(n):
        sofar = best[start]
        if sofar is None:
            continue
        for end in range(min(n, start + _LONGEST), start, -1):
            piece = letters[start:end]
            whole = piece in SYLLABLES
            if not whole and not (end == n and piece in _PREFIXES):
                continue
            have = best[end]
            if have is None or len(sofar) + 1 < len(have):
                best[end] = [*sofar, piece]
    return best[n]


def whole_syllables(letters: str) -> list[str] | None:
    """Letters cut into whole syllables only ([] for none), or None."""
    cut = segment(letters)
    if cut is None or (cut and cut[-1] not in SYLLABLES):
        return None
    return cut
