"""How a name is read for the look-up: characters, pinyin read as words, initials, other readings.

Everything here is pure: a name goes in, the tokens the index keeps come out, and a query is read
the same way. Tokens are short words separated by spaces, so that every engine (SQLite FTS5's
``ascii`` tokenizer, PostgreSQL's ``simple`` text search) splits them alike and a look-up is a
phrase of consecutive tokens:

- characters as overlapping pairs (长城建设 → 长城 城建 建设): any run of two or more characters is
  a phrase of pairs, found through the index instead of by scanning every name;
- pinyin syllables as overlapping pairs (chongqing qingchang changcheng), the name read as words
  (银行 yin hang, 重庆 chong qing, 长沙 chang sha, 会计 kuai ji), then the pairs of a short window
  around each character that has other readings, read that other way (so 重庆 is also found as
  zhongqing);
- initials as overlapping pairs (cqccjs → cq qc cc cj js), letters of words in Latin script whole;
- the legal representative's pairs and syllables.

Initials pairs and the representative's tokens carry a mark (`marked`) so that they are tokens of
their own, not the name's.

Reading a name with pypinyin (`lazy_pinyin`: segmentation, then its phrase dictionary) costs about
200 µs, 4,800 names/s. Most characters are read the same in every word, so a name is read
character by character from a table (`_char`, filled once per character), and only one of the 427
characters the phrase dictionary reads otherwise in some word (`CONTEXTUAL`) is read in the
longest dictionary word around it (`_in_word`, kept per neighbourhood): the same readings as
pypinyin's segmentation gives names (tests/test_search_terms.py), several times faster
(benchmarks/search.py, docs/scale.md).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

from pypinyin import Style, lazy_pinyin
from pypinyin import pinyin as heteronyms
from pypinyin.constants import PHRASES_DICT

# Every toneless syllable of pypinyin's character dictionary (ü written v, as pypinyin writes it).
# fmt: off
_SYLLABLE_TEXT = """
a ai an ang ao ba bai ban bang bao bei ben beng bi bian biang biao bie bin bing bo bong bu ca cai
can cang cao ce cei cen ceng cha chai chan chang chao che chen cheng chi chong chou chu chua chuai
chuan chuang chui chun chuo ci cong cou cu cuan cui cun cuo da dai dan dang dao de dei den deng di
dia dian diao die din ding diu dong dou du duan dui dun duo e ei en eng er fa fan fang fei fen feng
fiao fo fou fu ga gai gan gang gao ge gei gen geng gong gou gu gua guai guan guang gui gun guo ha
hai han hang hao he hei hen heng hm hng hong hou hu hua huai huan huang hui hun huo ji jia jian
jiang jiao jie jin jing jiong jiu ju juan jue jun ka kai kan kang kao ke kei ken keng kong kou ku
kua kuai kuan kuang kui kun kuo la lai lan lang lao le lei len leng li lia lian liang liao lie lin
ling liu lo long lou lu luan lun luo lv lve m ma mai man mang mao me mei men meng mi mian miao mie
min ming miu mo mou mu n na nai nan nang nao ne nei nen neng ng ni nia nian niang niao nie nin ning
niu nong nou nu nuan nun nuo nv nve o ou pa pai pan pang pao pei pen peng pi pian piao pie pin ping
po pou pu qi qia qian qiang qiao qie qin qing qiong qiu qu quan que qun ran rang rao re ren reng ri
rong rou ru rua ruan rui run ruo sa sai san sang sao se sen seng sha shai shan shang shao she shei
shen sheng shi shou shu shua shuai shuan shuang shui shun shuo si song sou su suan sui sun suo ta
tai tan tang tao te tei teng ti tian tiao tie ting tong tou tu tuan tui tun tuo wa wai wan wang wei
wen weng wo wong wu xi xia xian xiang xiao xie xin xing xiong xiu xu xuan xue xun ya yan yang yao ye
yi yin ying yo yong you yu yuan yue yun za zai zan zang zao ze zei zen zeng zha zhai zhan zhang zhao
zhe zhei zhen zheng zhi zhong zhou zhu zhua zhuai zhuan zhuang zhui zhun zhuo zi zong zou zu zuan
zui zun zuo
"""
SYLLABLES = frozenset(_SYLLABLE_TEXT.split())
# fmt: on
# The characters pypinyin's phrase dictionary reads otherwise than their most common reading in
# some word (长: chang in 长城, zhang in 校长); every other character is read the same everywhere.
# Derived from the dictionary (`contextual_characters`; tests/test_search_terms.py keeps the two
# equal), which takes seven seconds: too long for every start of the command line.
# fmt: off
CONTEXTUAL = frozenset(
    "万不丱么乐乘乜了亲什仇从仔仿会传伧伯伺似伽佛侗侥侧便俟信俩倘偻傀傍僪免六其兹内冒冯凹刨券刹削剥剿劲勒匙匮卒单南卜卡厦参句叨叶吁合吓吖否吭吱告呗呢呱呲呵呷咋和咖咯"
    "咱咳咶咽哕哦哪啁啜喔喳嗒嗲嗽嘲噱噷嚓嚼囤圈圜圩地坏坻埋埏埔埶堕堡塞壳大夯奇姥娜婑孱宿寻射将尉尨尺尾尿屏属岂崴差巷干度弄弟強弹强彊得徵徼忪思恶惏惓房扁扎扒扛扞扢折"
    "抹拂拓拗择括拶拾挝挟挼捋捰掴掺提揭摩撮擘擿攒敦数於无景暴曝曾朘朝期术朴杉杓杕枞枸柏柚柞查栅栖校核桔棬椎楛槛槟模欹殖殷殽氏氓汤沈沓没泊泌泥浍浒涡淜混溃溺漯潦澄澹濩"
    "炰烙焯熨燋燵爪牟犍狧猲率玢琢瑱畜番疟痡的盛省眴着瞿矜石砉碌碡碻磅祕禅秘称稽窨籍粘粥糜系絜綮纚红纤纥纶给络绰绿缉缩缪耆耙聒肋胖脉腊腌膀膻臂臭般色艾艿芥芫苕苣若茄茜"
    "荑荠荤莎莘莞莨莩莫菹落著葚蔓蔚蕃薄藉藏虾蚌蛇蛤蝍螫血行被袷裨裳裼褎褚褪见觉角觜解识诘说读谁调谷豁豉貉贲贾赚趄路蹊车轧转辗辟还迫遗適邪郄都酖酾重鐀钥铅铛铤镐长閒阿"
    "陂陆降隗隽雀露靓革鞘鞞顿颈颉颤食騃驮骠鸟鹄鹘麇黾齐龈龟"
)
# fmt: on
# What typed letters are cut into: syllables with a vowel (n, ng, hm are interjections, 嗯 and
# 哼, and would cut xian into xia n).
_TYPED = frozenset(s for s in SYLLABLES if set(s) & set("aeiouv"))
_LONGEST = max(map(len, SYLLABLES))
_PREFIXES = frozenset(s[:n] for s in _TYPED for n in range(1, len(s) + 1))
_HAN = "\u3400-\u9fff\U00020000-\U0002fa1f"
_HAN_CHAR = re.compile(f"[{_HAN}]")
_RUNS = re.compile(f"([{_HAN}]+)|([^{_HAN}]+)")
_NOT_WORD = re.compile(r"[\W_]+")
BARRIER = "qqq"  # not a syllable: keeps a phrase from running across two readings
REP, INITIALS = "0", "1"  # the marks of a representative's tokens and of initials pairs (`marked`)
WINDOW = 2  # syllables kept on each side of a character read another way
COMMON_READINGS = 3  # a dictionary lists rare readings too (有 wei, 司 ci): only the first few count
LONGEST_WORD = 3  # a character in a longer fixed expression (有限公司) has no other reading
MOST_ALTERNATIVES = 8  # other-reading windows per name: enough for real names, bounded for odd ones
LONGEST_PHRASE = 6  # the longest dictionary word looked for around a character with several readings


def normal(text: str) -> str:
    """Full-width forms folded (ＡＢＣ → abc), lower case, letters and digits only: the one form
    both names and queries are compared in."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).lower())


def pairs(text: str) -> list[str]:
    """Overlapping pairs of characters; a single character stands for itself."""
    if len(text) < 2:
        return [text] if text else []
    return [a + b for a, b in pairwise(text)]


@lru_cache(maxsize=200_000)
def _word(word: str) -> tuple[str, ...]:
    return tuple(lazy_pinyin(word))


@lru_cache(maxsize=100_000)
def _char(char: str) -> tuple[str, ...]:
    """Every reading of one character, the most common first (行: xing, hang, heng, …); the
    character itself when it has none."""
    found = [r for r in heteronyms(char, style=Style.NORMAL, heteronym=True)[0] if r.isascii() and r.isalpha()]
    return tuple(found) or (char,)


def _in_word(run: str, i: int) -> tuple[str, int] | None:
    """The reading of `run[i]` in the longest dictionary word around it, and that word's length."""
    start = max(0, i - LONGEST_PHRASE + 1)
    return _in_neighbourhood(run[start : i + LONGEST_PHRASE], i - start)


@lru_cache(maxsize=200_000)
def _in_neighbourhood(run: str, i: int) -> tuple[str, int] | None:
    for size in range(min(LONGEST_PHRASE, len(run)), 1, -1):
        for start in range(max(0, i - size + 1), min(i, len(run) - size) + 1):
            word = run[start : start + size]
            if word in PHRASES_DICT:
                said = _word(word)
                if len(said) == size:
                    return said[i - start], size
    return None


@dataclass(frozen=True)
class Reading:
    """A text read for the index: one syllable per character (a Latin word or number whole), the
    initials (a Latin word or number whole), and the characters with other readings (position,
    character, length of the word that decided its reading, 1 when none did)."""

    syllables: tuple[str, ...]
    initials: str
    polyphones: tuple[tuple[int, str, int], ...]

    @property
    def full(self) -> str:
        return "".join(self.syllables)


def read(text: str) -> Reading:
    """The text read as words: 长沙会计师事务所 → chang sha kuai ji shi shi wu suo."""
    syllables: list[str] = []
    initials: list[str] = []
    polyphones: list[tuple[int, str, int]] = []
    for han, other in _RUNS.findall(normal(text)):
        if other:
            syllables.append(other)
            initials.append(other)
            continue
        for i, char in enumerate(han):
            if char in CONTEXTUAL:
                found = _in_word(han, i)
                polyphones.append((len(syllables), char, found[1] if found else 1))
                said = found[0] if found else _char(char)[0]
            else:
                said = _char(char)[0]
            syllables.append(said)
            initials.append(said[0])
    return Reading(tuple(syllables), "".join(initials), tuple(polyphones))


def _alternatives(reading: Reading) -> list[list[str]]:
    """Windows of syllables around each character that has other readings, read that other way.

    A character read on its own is the likeliest to be read otherwise by someone typing, one in a
    fixed expression the least (in one longer than ``LONGEST_WORD`` never): windows are taken in
    that order, at most ``MOST_ALTERNATIVES``, of a character's ``COMMON_READINGS`` first readings."""
    found: list[list[str]] = []
    said = reading.syllables
    for i, char, size in sorted(reading.polyphones, key=lambda p: (p[2], p[0])):
        if size > LONGEST_WORD:
            continue
        for other in _char(char)[:COMMON_READINGS]:
            if other == said[i]:
                continue
            found.append([*said[max(0, i - WINDOW) : i], other, *said[i + 1 : i + 1 + WINDOW]])
            if len(found) == MOST_ALTERNATIVES:
                return found
    return found


@dataclass(frozen=True)
class Document:
    """What the index keeps of one subject, one space-separated text per indexed column, and the
    length of the name it sorts by."""

    chars: str
    syllables: str
    initials: str
    rep: str
    pinyin: str
    length: int


def marked(mark: str, tokens: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Tokens of a column that shares its words with another, made distinct: an engine keeps one
    list of places per token for all columns, so an initials pair "an" or a representative's
    "wang" unmarked would be read with every name's syllable "an" or "wang"."""
    return tuple(mark + t for t in tokens)


@lru_cache(maxsize=200_000)
def _representative(name: str) -> str:
    """A representative's characters as pairs and, after the barrier, syllables, all marked:
    person names repeat (王伟), so they are read once."""
    return " ".join(marked(REP, [*pairs(normal(name)), BARRIER, *read(name).syllables]))


def syllable_pairs(syllables: Sequence[str], *, last_alone: bool = True) -> list[str]:
    """Adjacent syllables joined (chang cheng jian → changcheng chengjian), the name's pinyin
    tokens: a syllable alone (you, gong) is in nearly every name, and a phrase of such tokens is
    as slow as its commonest one (300 ms at 1 M names), where a pair is rare. The last syllable
    follows alone (`last_alone`: in a name, not in a query), so that a syllable typed alone is
    the beginning of some token."""
    if len(syllables) < 2:
        return list(syllables)
    joined = [a + b for a, b in pairwise(syllables)]
    return [*joined, syllables[-1]] if last_alone else joined


def document(name: str, representative: str | None) -> Document:
    reading = read(name)
    said = " ".join(syllable_pairs(reading.syllables))
    for window in _alternatives(reading):
        said += " " + " ".join(syllable_pairs(window))
    chars = normal(name)
    return Document(
        chars=" ".join(pairs(chars)),
        syllables=said,
        initials=" ".join(marked(INITIALS, pairs(reading.initials))),
        rep=_representative(representative) if representative else "",
        pinyin=reading.full,
        length=len(chars),
    )


def has_han(text: str) -> bool:
    return _HAN_CHAR.search(text) is not None


def segment(letters: str) -> list[str] | None:
    """Letters typed as pinyin, cut into the fewest syllables (the last may be a syllable's
    beginning, still being typed): changcheng → chang cheng, xian → xian, changch → chang ch;
    None when they are not pinyin."""
    cuts = segmentations(letters)
    return cuts[0] if cuts else None


def segmentations(letters: str, most: int = 3) -> list[list[str]]:
    """The `most` cuts of the letters into the fewest syllables, fewest first: luan → luan, lu an;
    changan → chang an, chan gan (a cut alone cannot tell Lu'an or Chang'an from a word)."""
    n = len(letters)
    best: list[list[list[str]]] = [[] for _ in range(n + 1)]
    best[0] = [[]]
    for start in range(n):
        best[start] = sorted(best[start], key=len)[:most]
        for sofar in best[start]:
            for end in range(min(n, start + _LONGEST), start, -1):
                piece = letters[start:end]
                if piece in _TYPED or (end == n and piece in _PREFIXES):
                    best[end].append([*sofar, piece])
    return sorted(best[n], key=len)[:most]


def whole_syllables(letters: str) -> list[str] | None:
    """Letters cut into whole syllables only ([] for none), or None."""
    cut = segment(letters)
    if cut is None or (cut and cut[-1] not in SYLLABLES):
        return None
    return cut


def contextual_characters() -> frozenset[str]:
    """The characters pypinyin's phrase dictionary reads, in some word, otherwise than their most
    common reading (what `CONTEXTUAL` holds)."""
    from pypinyin.constants import PINYIN_DICT
    from pypinyin.contrib.tone_convert import to_normal

    found = set()
    for word, said in PHRASES_DICT.items():
        if len(said) != len(word):
            continue
        for char, readings in zip(word, said, strict=True):
            common = PINYIN_DICT.get(ord(char))
            if common is not None and to_normal(readings[0]) != to_normal(common.split(",")[0]):
                found.add(char)
    return frozenset(found)
