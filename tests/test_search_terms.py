"""How names are read for the look-up: polyphones read as words and found by their other
readings too, the reading table kept equal to pypinyin's dictionary, queries cut into syllables."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st
from pypinyin import lazy_pinyin

from helpers import at, org_id
from test_search import register
from xinyong.derived import search_terms as terms
from xinyong.rules.clock import FixedClock
from xinyong.security.access import PUBLIC
from xinyong.service import Service
from xinyong.storage.store import Store

# Real-style organisation names with a character read differently by the word it is in, and the
# word's reading, which must find the name.
POLYPHONES = {
    "中国银行股份有限公司": "yinhang",
    "重庆啤酒股份有限公司": "chongqing",
    "长沙银行股份有限公司": "changsha",
    "立信会计师事务所": "kuaiji",
    "招商银行股份有限公司": "zhaoshangyinhang",
    "长城汽车股份有限公司": "changcheng",
    "长江证券股份有限公司": "changjiang",
    "厦门航空有限公司": "xiamen",
    "万达大厦物业管理有限公司": "dasha",
    "蚌埠市粮油有限公司": "bengbu",
    "六安市供销合作社": "luan",
    "乐山市商业银行": "leshan",
    "北京音乐厅": "yinyue",
    "朝阳区建筑工程有限公司": "chaoyang",
    "中国重工集团": "zhonggong",
    "长春一汽": "changchun",
    "成长教育咨询有限公司": "chengzhang",
    "调味品有限公司": "tiaowei",
    "行业协会": "hangye",
    "西藏旅游股份有限公司": "xizang",
    "收藏品拍卖有限公司": "shoucang",
    "成都市建筑公司": "chengdu",
    "便利店连锁有限公司": "bianli",
    "长白山人参有限公司": "renshen",
    "东莞市电子有限公司": "dongguan",
    "番禺区食品有限公司": "panyu",
    "丽水市茶叶有限公司": "lishui",
    "台州市塑料有限公司": "taizhou",
    "给水排水设计院": "jishui",
    "供应链管理有限公司": "gongying",
    "重型机械有限公司": "zhongxing",
    "都江堰旅游有限公司": "dujiangyan",
    "长安汽车": "changan",
    "乐器制造有限公司": "yueqi",
    "薄荷种植专业合作社": "bohe",
    "校长培训中心": "xiaozhang",
    "宝藏文化传媒有限公司": "baozang",
    "大连重庆路商行": "shanghang",
}
# Names whose other reading a caller might type, and that reading.
OTHER_READINGS = {
    "重庆啤酒股份有限公司": "zhongqing",
    "中国银行股份有限公司": "yinxing",
    "单县食品有限公司": "shanxian",
    "曾氏食品有限公司": "zengshi",
    "长沙银行股份有限公司": "zhangsha",
    "立信会计师事务所": "huiji",
}


def test_polyphones_are_read_as_words() -> None:
    assert len(POLYPHONES) >= 30
    wrong = {name: terms.read(name).full for name, word in POLYPHONES.items() if word not in terms.read(name).full}
    assert wrong == {}


def test_polyphone_names_are_found_by_their_word_reading_and_their_other_readings(store: Store) -> None:
    names = list(dict.fromkeys([*POLYPHONES, *OTHER_READINGS]))
    ids = {name: org_id(100 + i) for i, name in enumerate(names)}
    register(store, [(ids[name], "organisation", name, "") for name in names])
    look = Service(store, FixedClock(at("2026-03-01"))).subjects.search
    for name, word in [*POLYPHONES.items(), *OTHER_READINGS.items()]:
        assert ids[name] in [f["id"] for f in look(PUBLIC, word, limit=200)], (name, word)


def test_readings_are_pypinyins_for_nearly_every_name() -> None:
    """The table-and-neighbourhood reading gives what pypinyin's segmentation gives; where the two
    cut a name differently (大同行川: 同行 tonghang, or 大同 and 行 xing) both are found, one by
    the other readings' windows."""
    from xinyong.demo.synth.population import generate_subjects_table

    table = generate_subjects_table(500, 1500, today=dt.date(2026, 1, 1), seed=4)
    names = [*table.column("name").to_pylist(), *POLYPHONES]
    differ = [n for n in names if terms.read(n).syllables != tuple(lazy_pinyin(terms.normal(n)))]
    assert len(differ) <= len(names) // 100, differ


def test_the_contextual_characters_are_the_dictionarys() -> None:
    assert terms.contextual_characters() == terms.CONTEXTUAL


def test_a_name_is_read_into_pairs_syllables_initials_and_a_representative() -> None:
    doc = terms.document("重庆长城ＡＢＣ建设有限公司", "李明")
    assert doc.chars.split()[:4] == ["重庆", "庆长", "长城", "城a"]
    said = doc.syllables.split()
    word_reading = ["chongqing", "qingchang", "changcheng", "chengabc", "abcjian", "jianshe", "sheyou", "youxian"]
    assert said[: len(word_reading)] == word_reading
    assert "zhongqing qingchang" in doc.syllables  # 重 read the other way, with its neighbours
    assert doc.initials.split()[:3] == ["1cq", "1qc", "1cc"]
    assert doc.rep.split() == ["0李明", "0qqq", "0li", "0ming"]
    assert doc.pinyin == "chongqingchangchengabcjiansheyouxiangongsi"
    assert doc.length == 13  # 重庆长城 abc 建设有限公司
    # A fixed expression's characters have no other readings (有 wei, 司 ci are a dictionary's).
    assert "youwei" not in doc.syllables
    assert "gongci" not in doc.syllables


def test_queries_are_cut_into_the_fewest_syllables() -> None:
    assert terms.segment("changcheng") == ["chang", "cheng"]
    assert terms.segment("xian") == ["xian"]
    assert terms.segment("changch") == ["chang", "ch"]
    assert terms.segment("cqcc") is None
    assert terms.whole_syllables("changch") is None
    assert terms.whole_syllables("") == []


def test_normal_form_folds_width_and_case_and_drops_punctuation() -> None:
    assert terms.normal(" ＡＢＣ（威海）科技_有限-公司 ") == "abc威海科技有限公司"


@given(st.text(alphabet="长城重庆银行会计乐都单有限公司海润华信0123abcＡＢ（）", min_size=1, max_size=16))
def test_every_character_has_a_syllable_and_every_pair_a_token(text: str) -> None:
    q = terms.normal(text)
    reading = terms.read(text)
    han = [c for c in q if terms.has_han(c)]
    assert len([s for s in reading.syllables if s.isalpha()]) >= len(han)
    assert all(s.isascii() and s.isalnum() for s in reading.syllables)
    pairs = terms.pairs(q)
    assert len(pairs) == max(len(q) - 1, 1 if q else 0)
    assert "".join(p[0] for p in pairs) + (pairs[-1][1:] if pairs else "") == q
