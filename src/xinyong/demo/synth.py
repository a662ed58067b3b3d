"""A deterministic, seeded synthetic city: persons, organisations and the records agencies hold.

Demos, fixtures and benchmarks use only synthetic data (DESIGN.md safeguard 8), so this module
invents every subject and record. Identifiers are valid (GB 11643 resident identity numbers and
GB 32100 unified social credit codes, checked with python-stdnum) so that the import path is
exercised exactly as with real files; names are drawn from lists of common characters and words.

The city is Weihai (威海, prefecture 3710) with four county-level divisions. Generation is pure
Python over one seeded stream per concern; the per-subject draws are independent table look-ups,
so a vectorised (NumPy) version for millions of subjects can follow the same tables.
"""

from __future__ import annotations

import csv
import datetime
import math
import pathlib
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter
from typing import Any

from stdnum.cn import ric, uscc

__all__ = [
    "BEHAVIOURS_BY_KIND",
    "DIVISIONS",
    "SOURCES",
    "City",
    "RecordRow",
    "SubjectRow",
    "generate_city",
    "generate_records_tables",
    "generate_subjects_table",
    "write_files",
    "write_parquet",
]


@dataclass(frozen=True, slots=True)
class SubjectRow:
    """One person or organisation, as a subjects file lists it."""

    subject_id: str
    kind: str
    name: str
    legal_representative: str | None
    division: str


@dataclass(frozen=True, slots=True)
class RecordRow:
    """One fact a source agency submits about a subject."""

    source: str
    subject_id: str
    behaviour: str
    occurred_on: datetime.date
    document_ref: str
    amount: Decimal | None
    note: str | None


@dataclass(frozen=True, slots=True)
class City:
    """The generated population and its records, ordered by occurred_on."""

    subjects: list[SubjectRow]
    records: list[RecordRow]


# --- catalogue (docs/catalogue.md) -----------------------------------------------------------

SOURCES: dict[str, tuple[str, ...]] = {
    "court": (
        "COURT.DEFAULT",
        "COURT.EVADE_ENFORCEMENT",
        "COURT.FALSE_ASSET_REPORT",
        "COURT.OBSTRUCT_ENFORCEMENT",
        "COURT.BREACH_SPENDING_BAN",
        "COURT.BREACH_SETTLEMENT",
    ),
    "tax": (
        "TAX.LATE_FILING",
        "TAX.LATE_PAYMENT",
        "TAX.ARREARS",
        "TAX.INVOICE_MISUSE",
        "TAX.EVASION",
        "TAX.FALSE_INVOICE",
        "TAX.REFUSED_INSPECTION",
    ),
    "market": (
        "MARKET.FALSE_ADVERTISING",
        "MARKET.FOOD_SAFETY",
        "MARKET.UNLICENSED",
        "MARKET.ABNORMAL_OPERATION",
    ),
    "transport": ("TRAFFIC.MINOR", "TRAFFIC.DRUNK_DRIVING", "TRANSPORT.FARE_EVASION"),
    "environment": ("ENV.POLLUTION", "ENV.ILLEGAL_DUMPING"),
    "civil-affairs": (
        "CIVIL.VOLUNTEER",
        "CIVIL.BLOOD_DONATION",
        "CIVIL.CHARITY_DONATION",
        "CIVIL.HONOUR",
    ),
}

_SOURCE_OF: dict[str, str] = {code: src for src, codes in SOURCES.items() for code in codes}

BEHAVIOURS_BY_KIND: dict[str, frozenset[str]] = {
    "person": frozenset([*SOURCES["transport"], *SOURCES["court"], *SOURCES["civil-affairs"], "TAX.ARREARS"]),
    "organisation": frozenset(
        [
            *SOURCES["court"],
            *SOURCES["tax"],
            *SOURCES["market"],
            *SOURCES["environment"],
            "CIVIL.CHARITY_DONATION",
            "CIVIL.HONOUR",
        ]
    ),
}

# --- the city -------------------------------------------------------------------------------

DIVISIONS: dict[str, str] = {
    "371002": "环翠区",
    "371003": "文登区",
    "371082": "荣成市",
    "371083": "乳山市",
}
# Rongcheng is the demo scheme's jurisdiction, so it gets the largest share of residents.
_DIVISION_POOL: tuple[str, ...] = ("371082",) * 40 + ("371002",) * 30 + ("371003",) * 18 + ("371083",) * 12

# A resident identity number carries the address code in force where the number was first
# assigned, and stdnum's ric.validate checks that the code existed in the birth year. The four
# current codes date from 1987-2014, so older residents carry the code of the same county under
# the former Yantai prefecture (3706xx, 1983-1987) or Yantai district (3721xx, up to 1983).
# Each entry: (first year, last year, code), newest first; the years are those in stdnum's table.
_ID_ADDRESS_CODES: dict[str, tuple[tuple[int, int, str], ...]] = {
    "371002": ((1987, 9999, "371002"), (1983, 1987, "370620"), (0, 1983, "372102")),
    "371003": (
        (2014, 9999, "371003"),
        (1989, 2014, "371081"),
        (1987, 1988, "371022"),
        (1983, 1987, "370632"),
        (0, 1983, "372132"),
    ),
    "371082": (
        (1989, 9999, "371082"),
        (1987, 1988, "371023"),
        (1983, 1987, "370633"),
        (0, 1983, "372133"),
    ),
    "371083": (
        (1993, 9999, "371083"),
        (1987, 1993, "371021"),
        (1983, 1987, "370630"),
        (0, 1983, "372130"),
    ),
}

# How a county-level body is named: districts carry the city's name, county-level cities do not.
_COUNTY_NAMES: dict[str, str] = {
    "371002": "威海市环翠区",
    "371003": "威海市文登区",
    "371082": "荣成市",
    "371083": "乳山市",
}

# One-character abbreviations agencies use in document numbers (荣税罚〔2024〕12号).
_ABBR: dict[str, str] = {"371002": "环", "371003": "文", "371082": "荣", "371083": "乳"}

_PLACES: dict[str, tuple[str, ...]] = {
    "371002": ("威海市", "威海", "威海市环翠区"),
    "371003": ("威海市文登区", "文登", "威海"),
    "371082": ("荣成市", "荣成", "石岛", "威海"),
    "371083": ("乳山市", "乳山", "威海"),
}

_TOWNS: dict[str, tuple[str, ...]] = {
    "371002": ("张村", "羊亭", "温泉", "孙家疃", "桥头", "嵩山"),
    "371003": ("泽头", "张家产", "葛家", "侯家", "宋村", "大水泊"),
    "371082": ("石岛", "俚岛", "成山", "港西", "人和", "寻山", "埠柳", "上庄"),
    "371083": ("白沙滩", "海阳所", "育黎", "冯家", "夏村", "南黄"),
}

# --- names ----------------------------------------------------------------------------------

# Repetition is the weighting: the commonest surnames appear several times; 于 丛 鞠 毕 曲 初
# are frequent on the Jiaodong peninsula, which makes the population look local.
_SURNAMES: tuple[str, ...] = tuple(
    "王李张刘陈" * 6
    + "杨黄赵吴周徐孙马朱胡郭于姜丛鞠毕曲初" * 3
    + "何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢崔钟"
    + "谭陆汪范金石廖贾夏付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴孔汤"
)
_MALE_CHARS = "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆旭宁龙林阳建国峰东海成志文德永"
_FEMALE_CHARS = "芳娜敏静丽艳娟霞秀玲燕婷雪慧红琳颖倩洁晶玉梅兰萍佳欣悦怡璐丹月晓春"
_NEUTRAL_CHARS = "子晨嘉思雨欣诗一瑞安乐新立德金海"

# Shared brand words make fuzzy and pinyin search interesting: many companies contain 海润
# (hairun) or 华信 (huaxin); the first entries are repeated so they recur more often.
_BRANDS: tuple[str, ...] = (
    ("海润", "华信", "鑫源", "海洋", "金海") * 4
    + (
        "恒通", "宏达", "泰和", "永兴", "海天", "东方", "蓝海", "瑞丰", "福润", "鸿运",
        "兴业", "信达", "远洋", "海之宝", "盛泰", "利民", "鼎盛", "海丰", "富华", "万通",
        "新世纪", "成山", "龙海", "佳和", "顺达", "海韵", "天润", "恒源", "嘉诚", "汇通",
        "中泰", "海汇", "金帆", "银海", "诚信", "北方", "海星", "润泽", "华夏", "安泰",
    )
)  # fmt: skip

# (industry word, can breach food rules, can pollute)
_INDUSTRIES: tuple[tuple[str, bool, bool], ...] = (
    ("食品", True, False),
    ("水产", True, True),
    ("海洋食品", True, True),
    ("海产品", True, False),
    ("渔业", True, False),
    ("远洋渔业", False, False),
    ("食品科技", True, False),
    ("餐饮管理", True, False),
    ("机械", False, True),
    ("橡胶制品", False, True),
    ("化工", False, True),
    ("船舶修造", False, True),
    ("纺织", False, True),
    ("印染", False, True),
    ("建材", False, True),
    ("电子科技", False, False),
    ("信息技术", False, False),
    ("科技", False, False),
    ("新能源科技", False, False),
    ("商贸", False, False),
    ("物流", False, False),
    ("建筑工程", False, True),
    ("房地产开发", False, False),
    ("旅游开发", False, False),
    ("酒店管理", False, False),
    ("汽车销售服务", False, False),
    ("装饰工程", False, False),
    ("印刷", False, True),
)
_COOP_PRODUCTS = (
    "海带养殖",
    "海参养殖",
    "苹果种植",
    "花生种植",
    "蔬菜种植",
    "茶叶种植",
    "农机服务",
)
_ASSOCIATION_TRADES = (
    "水产品加工行业协会", "物流协会", "餐饮烹饪协会", "个体劳动者协会", "软件行业协会",
    "建筑业协会", "旅游协会", "青年志愿者协会", "企业家协会", "渔业协会",
)  # fmt: skip
_CHAMBER_ORIGINS = ("温州", "福建", "浙江", "潮汕", "江苏", "东北", "青岛", "烟台")
_NONPROFITS = ("职业培训学校", "养老服务中心", "社会工作服务中心", "文化艺术培训中心")
_INSTITUTIONS = (
    "公共资源交易中心", "图书馆", "综合检验检测中心", "城市建设服务中心", "渔业技术推广站",
    "融媒体中心", "实验小学", "第一中学", "第二中学", "职业中等专业学校", "人民医院",
    "不动产登记中心", "农业技术推广中心",
)  # fmt: skip

# GB 11714 organisation codes may use letters; the USCC alphabet omits I O S V Z, and an
# organisation code inside a USCC must use only characters the USCC alphabet allows.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_GB11714_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

# --- generation ----------------------------------------------------------------------------


def generate_city(
    *,
    persons: int,
    organisations: int,
    today: datetime.date,
    years: int = 3,
    seed: int = 2014,
    records_per_subject: float = 2.5,
) -> City:
    """Generate a city whose records occurred in the `years` years before `today`.

    The same arguments always give the same city; the mean number of records per subject is
    close to `records_per_subject`, rare events (court defaults, tax evasion) keep their shares.
    """
    if persons < 0 or organisations < 0:
        raise ValueError("persons and organisations must not be negative")
    if years < 1:
        raise ValueError("years must be at least 1")
    if records_per_subject < 0:
        raise ValueError("records_per_subject must not be negative")

    # Separate streams keep the persons unchanged when only the organisation count changes.
    person_rng = random.Random(f"{seed}:persons")
    org_rng = random.Random(f"{seed}:organisations")
    record_rng = random.Random(f"{seed}:records")

    used_ids: set[str] = set()
    people = [_person(person_rng, used_ids, today) for _ in range(persons)]
    used_names: set[str] = set()
    orgs = [_organisation(org_rng, used_ids, used_names, people) for _ in range(organisations)]

    start = _years_before(today, years)
    window = [start + datetime.timedelta(days=d) for d in range((today - start).days)]
    records = _records(record_rng, people, orgs, window, records_per_subject)
    subjects = [p.row for p in people] + [o.row for o in orgs]
    return City(subjects=subjects, records=records)


def write_files(city: City, out_dir: pathlib.Path) -> dict[str, pathlib.Path]:
    """Write the city as the import files DESIGN.md describes, one records file per source.

    Returns the written paths keyed by file name (``subjects.csv``, ``records-court.csv``, ...).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, pathlib.Path] = {}

    subjects_path = out_dir / "subjects.csv"
    with subjects_path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["subject_id", "kind", "name", "legal_representative", "division"])
        for s in city.subjects:
            writer.writerow([s.subject_id, s.kind, s.name, s.legal_representative or "", s.division])
    paths[subjects_path.name] = subjects_path

    by_source: dict[str, list[RecordRow]] = {src: [] for src in SOURCES}
    for r in city.records:
        by_source[r.source].append(r)
    for src, rows in by_source.items():
        path = out_dir / f"records-{src}.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["subject_id", "behaviour", "occurred_on", "document_ref", "amount", "note"])
            for r in rows:
                writer.writerow(
                    [
                        r.subject_id,
                        r.behaviour,
                        r.occurred_on.isoformat(),
                        r.document_ref,
                        "" if r.amount is None else str(r.amount),
                        r.note or "",
                    ]
                )
        paths[path.name] = path
    return paths


# --- subjects -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Person:
    row: SubjectRow
    male: bool


@dataclass(frozen=True, slots=True)
class _Org:
    row: SubjectRow
    enterprise: bool
    food: bool
    polluting: bool


def _years_before(day: datetime.date, years: int) -> datetime.date:
    """Calendar subtraction as DESIGN.md adds durations: 29 February falls back to the 28th."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _person_name(rng: random.Random, male: bool) -> str:
    chars = (_MALE_CHARS if male else _FEMALE_CHARS) + _NEUTRAL_CHARS
    given = rng.choice(chars)
    # About a third of given names have one character, which keeps 王伟-style namesakes common.
    if rng.random() < 0.65:
        given += rng.choice(chars)
    return rng.choice(_SURNAMES) + given


def _id_address_code(division: str, year: int) -> str:
    for first, last, code in _ID_ADDRESS_CODES[division]:
        if first <= year <= last:
            return code
    raise AssertionError(f"no address code for {division} in {year}")  # tables cover all years


def _person(rng: random.Random, used_ids: set[str], today: datetime.date) -> _Person:
    division = rng.choice(_DIVISION_POOL)
    male = rng.random() < 0.5
    # Ages 18-80 inclusive: born after today - 81 years and no later than today - 18 years.
    oldest = _years_before(today, 81) + datetime.timedelta(days=1)
    span = (_years_before(today, 18) - oldest).days + 1
    while True:
        born = oldest + datetime.timedelta(days=rng.randrange(span))
        # The sequence number is odd for men and even for women (GB 11643).
        seq = rng.randrange(500) * 2 + 1 if male else rng.randrange(1, 500) * 2
        first17 = f"{_id_address_code(division, born.year)}{born:%Y%m%d}{seq:03d}"
        # stdnum's ric.calc_check_digit ignores the last character of its argument, so it is
        # given a placeholder check character.
        subject_id = first17 + ric.calc_check_digit(first17 + "0")
        if subject_id not in used_ids:
            used_ids.add(subject_id)
            break
    row = SubjectRow(subject_id, "person", _person_name(rng, male), None, division)
    return _Person(row, male)


def _gb11714_code(rng: random.Random) -> str:
    """A 9-character organisation code with a valid GB 11714 check character."""
    if rng.random() < 0.6:
        # Codes assigned since the 2015 reform start with MA and use letters.
        body = "MA" + "".join(rng.choice(_USCC_ALPHABET) for _ in range(6))
    else:
        body = rng.choice("3456789") + f"{rng.randrange(10**7):07d}"
    total = sum(int(c, 36) * w for c, w in zip(body, _GB11714_WEIGHTS, strict=True))
    check = 11 - total % 11
    return body + ("X" if check == 10 else "0" if check == 11 else str(check))


def _uscc(rng: random.Random, prefix: str, division: str, used_ids: set[str]) -> str:
    while True:
        first17 = prefix + division + _gb11714_code(rng)
        code = first17 + uscc.calc_check_digit(first17)
        if code not in used_ids:
            used_ids.add(code)
            return code


def _org_name(rng: random.Random, division: str, kind: str) -> tuple[str, bool, bool]:
    """A plausible name for the organisation type, with its food and pollution exposure."""
    place = rng.choice(_PLACES[division])
    county = _COUNTY_NAMES[division]
    if kind == "enterprise":
        industry, food, polluting = rng.choice(_INDUSTRIES)
        brand = rng.choice(_BRANDS)
        r = rng.random()
        if r < 0.08:
            return f"山东{brand}{industry}股份有限公司", food, polluting
        suffix = "有限责任公司" if r < 0.18 else "有限公司"
        return f"{place}{brand}{industry}{suffix}", food, polluting
    if kind == "cooperative":
        product = rng.choice(_COOP_PRODUCTS)
        return f"{county}{rng.choice(_TOWNS[division])}{product}专业合作社", False, False
    if kind == "association":
        if rng.random() < 0.3:
            return f"{county}{rng.choice(_CHAMBER_ORIGINS)}商会", False, False
        return f"{rng.choice(('威海市', county))}{rng.choice(_ASSOCIATION_TRADES)}", False, False
    if kind == "nonprofit":
        return f"{county}{rng.choice(_BRANDS)}{rng.choice(_NONPROFITS)}", False, False
    town = rng.choice(_TOWNS[division])
    if rng.random() < 0.25:
        return f"{county}{town}中心小学", False, False
    return f"{county}{rng.choice(_INSTITUTIONS)}", False, False


# (organisation type, USCC registration authority + entity type, weight out of 100)
_ORG_TYPES: tuple[tuple[str, str, int], ...] = (
    ("enterprise", "91", 82),
    ("cooperative", "93", 6),
    ("association", "51", 4),
    ("nonprofit", "52", 3),
    ("institution", "12", 5),
)
_ORG_TYPE_POOL: tuple[tuple[str, str], ...] = tuple(
    (kind, prefix) for kind, prefix, weight in _ORG_TYPES for _ in range(weight)
)


def _organisation(rng: random.Random, used_ids: set[str], used_names: set[str], people: list[_Person]) -> _Org:
    division = rng.choice(_DIVISION_POOL)
    kind, prefix = rng.choice(_ORG_TYPE_POOL)
    # Names should be unique in one city; after some clashes a two-word brand makes room, and a
    # rare duplicate among millions of synthetic organisations is accepted rather than looping.
    for attempt in range(20):
        if attempt < 10:
            name, food, polluting = _org_name(rng, division, kind)
        else:
            kind, prefix = "enterprise", "91"
            industry, food, polluting = rng.choice(_INDUSTRIES)
            brand = rng.choice(_BRANDS) + rng.choice(_BRANDS)
            name = f"{rng.choice(_PLACES[division])}{brand}{industry}有限公司"
        if name not in used_names:
            break
    used_names.add(name)
    subject_id = _uscc(rng, prefix, division, used_ids)
    # Legal representatives are residents of the city, which lets the public search by them.
    rep = rng.choice(people).row.name if people else _person_name(rng, rng.random() < 0.7)
    row = SubjectRow(subject_id, "organisation", name, rep, division)
    return _Org(row, kind in ("enterprise", "cooperative"), food, polluting)


# --- records --------------------------------------------------------------------------------

# A draft is (day index in the window, behaviour, subject id, division, amount, note); document
# numbers are assigned after sorting by day so that they rise through each year like real ones.
_Draft = tuple[int, str, str, str, Decimal | None, str | None]

# Everyday behaviours: expected count per subject over the window before calibration. Counts
# are Poisson with a per-subject gamma-distributed propensity (a negative binomial), which gives
# many subjects with none and a long tail with many.
_PERSON_NEGATIVE: tuple[tuple[str, float], ...] = (
    ("TRAFFIC.MINOR", 1.1),
    ("TRANSPORT.FARE_EVASION", 0.06),
)
_PERSON_POSITIVE: tuple[tuple[str, float], ...] = (
    ("CIVIL.VOLUNTEER", 0.75),
    ("CIVIL.BLOOD_DONATION", 0.12),
    ("CIVIL.CHARITY_DONATION", 0.15),
)
_ORG_NEGATIVE: tuple[tuple[str, float], ...] = (
    ("TAX.LATE_FILING", 0.6),
    ("TAX.LATE_PAYMENT", 0.3),
    ("MARKET.ABNORMAL_OPERATION", 0.08),
)
_ORG_POSITIVE: tuple[tuple[str, float], ...] = (("CIVIL.CHARITY_DONATION", 0.25),)

# Rare behaviours: probability of one record per subject; not scaled by records_per_subject so
# that the shares (about 2% of persons and 4% of organisations in default) stay put.
_PERSON_RARE: tuple[tuple[str, float], ...] = (
    ("TRAFFIC.DRUNK_DRIVING", 0.006),
    ("TAX.ARREARS", 0.01),
    ("CIVIL.HONOUR", 0.01),
)
_ORG_RARE: tuple[tuple[str, float], ...] = (
    ("TAX.ARREARS", 0.04),
    ("TAX.INVOICE_MISUSE", 0.02),
    ("TAX.EVASION", 0.005),
    ("TAX.FALSE_INVOICE", 0.005),
    ("TAX.REFUSED_INSPECTION", 0.004),
    ("MARKET.FALSE_ADVERTISING", 0.03),
    ("MARKET.UNLICENSED", 0.01),
    ("ENV.ILLEGAL_DUMPING", 0.015),
    ("CIVIL.HONOUR", 0.03),
)
_PERSON_COURT = 0.015
_ORG_COURT = 0.03
# A court default often brings further enforcement findings in the same case.
_COURT_FOLLOW_ONS: tuple[tuple[str, float], ...] = (
    ("COURT.EVADE_ENFORCEMENT", 0.2),
    ("COURT.BREACH_SPENDING_BAN", 0.12),
    ("COURT.FALSE_ASSET_REPORT", 0.06),
    ("COURT.OBSTRUCT_ENFORCEMENT", 0.04),
    ("COURT.BREACH_SETTLEMENT", 0.08),
)
_BAD_SHARE = 0.02
_MODEL_SHARE = 0.02
_BAD_ORG_SHARE = 0.04
_MODEL_ORG_SHARE = 0.03

_NOTES: dict[str, tuple[str, ...]] = {
    "COURT.DEFAULT": ("有履行能力而拒不履行生效法律文书确定义务",),
    "COURT.EVADE_ENFORCEMENT": ("以虚假诉讼、虚假仲裁或者隐匿、转移财产等方法规避执行",),
    "COURT.FALSE_ASSET_REPORT": ("违反财产报告制度",),
    "COURT.OBSTRUCT_ENFORCEMENT": ("以暴力、威胁等方法妨碍、抗拒执行",),
    "COURT.BREACH_SPENDING_BAN": ("违反限制消费令",),
    "COURT.BREACH_SETTLEMENT": ("无正当理由拒不履行执行和解协议",),
    "TAX.LATE_FILING": (
        "未按期进行增值税纳税申报",
        "未按期进行企业所得税申报",
        "未按期报送财务报表",
    ),
    "TAX.LATE_PAYMENT": ("未按期缴纳增值税", "未按期缴纳城市维护建设税"),
    "TAX.ARREARS": ("欠缴税款经催缴仍未缴纳",),
    "TAX.INVOICE_MISUSE": ("未按规定开具发票", "未按规定保管发票"),
    "TAX.EVASION": ("进行虚假纳税申报，少缴应纳税款",),
    "TAX.FALSE_INVOICE": ("虚开增值税专用发票",),
    "TAX.REFUSED_INSPECTION": ("拒绝税务机关检查",),
    "MARKET.FALSE_ADVERTISING": ("发布虚假广告", "对商品作虚假宣传"),
    "MARKET.FOOD_SAFETY": ("生产经营不符合食品安全标准的食品", "未按规定查验进货票证"),
    "MARKET.UNLICENSED": ("未取得营业执照从事经营活动",),
    "MARKET.ABNORMAL_OPERATION": ("未按规定报送年度报告", "通过登记的住所无法联系"),
    "TRAFFIC.MINOR": (
        "违反道路交通信号灯通行",
        "违反禁止标线指示",
        "机动车违反规定停放",
        "驾驶时拨打接听手持电话",
        "超过规定时速未达20%",
        "不按规定使用安全带",
    ),
    "TRAFFIC.DRUNK_DRIVING": ("饮酒后驾驶机动车", "醉酒驾驶机动车"),
    "TRANSPORT.FARE_EVASION": ("乘坐城市公交未按规定购票", "乘坐客运班车逃票"),
    "ENV.POLLUTION": ("超标排放水污染物", "未按规定贮存危险废物", "废气处理设施未正常运行"),
    "ENV.ILLEGAL_DUMPING": ("非法倾倒建筑垃圾", "随意倾倒工业固体废物"),
    "CIVIL.CHARITY_DONATION": ("向慈善组织捐赠", "参与慈善一日捐活动"),
    "CIVIL.HONOUR": ("获评市级诚信示范", "获评见义勇为先进", "获评优秀志愿者"),
}
_ORG_HONOURS = ("获评守合同重信用企业", "获评市级诚信示范单位", "获评纳税信用示范单位")


def _poisson(rng: random.Random, mu: float) -> int:
    """Knuth's method; the mean is small except in the far tail, where a normal will do."""
    if mu <= 0.0:
        return 0
    if mu > 30.0:
        return max(0, round(rng.gauss(mu, math.sqrt(mu))))
    limit = math.exp(-mu)
    k = 0
    p = rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _yuan(rng: random.Random, median: float, sigma: float, lo: float, hi: float, cents: bool = False) -> Decimal:
    value = min(hi, max(lo, rng.lognormvariate(math.log(median), sigma)))
    return Decimal(f"{value:.2f}") if cents else Decimal(round(value))


def _amount(rng: random.Random, code: str, person: bool) -> Decimal | None:
    """The sum at stake: unpaid judgment (COURT.*), tax concerned (TAX.*), else the fine."""
    family = code.split(".", 1)[0]
    if family == "CIVIL" or code == "MARKET.ABNORMAL_OPERATION":
        return None  # praise and the abnormal-operations list carry no sum
    if family == "COURT":
        return (
            _yuan(rng, 60_000, 1.0, 3_000, 3_000_000, cents=True)
            if person
            else _yuan(rng, 800_000, 1.1, 20_000, 80_000_000, cents=True)
        )
    fixed: dict[str, tuple[int, ...]] = {
        "TRAFFIC.MINOR": (50, 100, 100, 150, 200),
        "TRAFFIC.DRUNK_DRIVING": (1000, 1500, 2000),
        "TRANSPORT.FARE_EVASION": (20, 50, 100),
        "TAX.LATE_FILING": (200, 500, 1000, 2000),
        "TAX.INVOICE_MISUSE": (1000, 2000, 5000, 10000),
        "TAX.REFUSED_INSPECTION": (10000, 20000, 50000),
    }
    if code in fixed:
        return Decimal(rng.choice(fixed[code]))
    scales: dict[str, tuple[float, float, float, float]] = {
        "TAX.LATE_PAYMENT": (30_000, 1.0, 500, 2_000_000),
        "TAX.ARREARS": (8_000 if person else 80_000, 1.0, 200, 10_000_000),
        "TAX.EVASION": (600_000, 1.0, 50_000, 50_000_000),
        "TAX.FALSE_INVOICE": (1_000_000, 1.0, 50_000, 100_000_000),
        "MARKET.FALSE_ADVERTISING": (50_000, 0.8, 5_000, 1_000_000),
        "MARKET.FOOD_SAFETY": (30_000, 0.8, 2_000, 500_000),
        "MARKET.UNLICENSED": (20_000, 0.8, 1_000, 200_000),
        "ENV.POLLUTION": (150_000, 0.9, 10_000, 1_000_000),
        "ENV.ILLEGAL_DUMPING": (20_000, 0.8, 5_000, 100_000),
    }
    median, sigma, lo, hi = scales[code]
    return _yuan(rng, median, sigma, lo, hi, cents=family == "TAX")


def _note(rng: random.Random, code: str, person: bool) -> str | None:
    if code == "CIVIL.BLOOD_DONATION":
        return None  # restricted data: nothing beyond the fact itself
    if code == "CIVIL.VOLUNTEER":
        return f"社区志愿服务{rng.choice((2, 4, 4, 6, 8, 8, 12, 20))}小时"
    if rng.random() < 0.25:
        return None
    if code == "CIVIL.HONOUR" and not person:
        return rng.choice(_ORG_HONOURS)
    return rng.choice(_NOTES[code])


class _Sink:
    """Collects drafts for one run, so that all subjects draw from one stream and one window."""

    def __init__(self, rng: random.Random, days: int) -> None:
        self.rng = rng
        self.days = days
        self.drafts: list[_Draft] = []

    def add(self, code: str, row: SubjectRow) -> None:
        rng = self.rng
        person = row.kind == "person"
        self.drafts.append(
            (
                rng.randrange(self.days),
                code,
                row.subject_id,
                row.division,
                _amount(rng, code, person),
                _note(rng, code, person),
            )
        )

    def add_many(self, code: str, row: SubjectRow, count: int) -> None:
        for _ in range(count):
            self.add(code, row)

    def court_case(self, row: SubjectRow, follow_on_scale: float = 1.0) -> None:
        """A default and, sometimes, later findings in the same case with the same sum."""
        rng = self.rng
        person = row.kind == "person"
        start = rng.randrange(self.days)
        amount = _amount(rng, "COURT.DEFAULT", person)
        cases = [("COURT.DEFAULT", start)]
        for code, p in _COURT_FOLLOW_ONS:
            if rng.random() < p * follow_on_scale:
                cases.append((code, min(self.days - 1, start + rng.randint(20, 300))))
        for code, day in cases:
            self.drafts.append((day, code, row.subject_id, row.division, amount, _note(rng, code, person)))


def _rare(sink: _Sink, row: SubjectRow, table: tuple[tuple[str, float], ...]) -> None:
    rng = sink.rng
    for code, p in table:
        if rng.random() < p:
            sink.add(code, row)


def _fixed_person(sink: _Sink, person: _Person) -> None:
    rng, row = sink.rng, person.row
    if rng.random() < _PERSON_COURT:
        sink.court_case(row)
    _rare(sink, row, _PERSON_RARE)
    r = rng.random()
    if r < _BAD_SHARE:
        # Several negatives at once, so that some persons fall into the lowest grades.
        if rng.random() < 0.5:
            sink.court_case(row, follow_on_scale=2.0)
        sink.add_many("TRAFFIC.MINOR", row, rng.randint(3, 8))
        sink.add_many("TRANSPORT.FARE_EVASION", row, rng.randint(0, 3))
        if rng.random() < 0.3:
            sink.add("TRAFFIC.DRUNK_DRIVING", row)
        if rng.random() < 0.2:
            sink.add("TAX.ARREARS", row)
    elif r < _BAD_SHARE + _MODEL_SHARE:
        sink.add_many("CIVIL.VOLUNTEER", row, rng.randint(4, 10))
        sink.add_many("CIVIL.BLOOD_DONATION", row, rng.randint(1, 3))
        sink.add_many("CIVIL.CHARITY_DONATION", row, rng.randint(1, 3))
        if rng.random() < 0.6:
            sink.add("CIVIL.HONOUR", row)


def _fixed_org(sink: _Sink, org: _Org) -> None:
    rng, row = sink.rng, org.row
    # Associations and public institutions rarely trade, so their negative risks are damped
    # and market regulation does not concern them.
    scale = 1.0 if org.enterprise else 0.3
    if rng.random() < _ORG_COURT * scale:
        sink.court_case(row)
    for code, p in _ORG_RARE:
        damped = p * (1.0 if code.startswith("CIVIL.") else scale)
        if (org.enterprise or not code.startswith("MARKET.")) and rng.random() < damped:
            sink.add(code, row)
    if org.food and rng.random() < 0.08:
        sink.add("MARKET.FOOD_SAFETY", row)
    if rng.random() < (0.08 if org.polluting else 0.005):
        sink.add("ENV.POLLUTION", row)
    r = rng.random()
    if org.enterprise and r < _BAD_ORG_SHARE:
        # Repeated late filing and payment spread the tax-credit grades down to C and D.
        sink.add_many("TAX.LATE_FILING", row, rng.randint(2, 6))
        sink.add_many("TAX.LATE_PAYMENT", row, rng.randint(1, 4))
        for code, p in (
            ("TAX.ARREARS", 0.5),
            ("MARKET.ABNORMAL_OPERATION", 0.5),
            ("MARKET.FALSE_ADVERTISING", 0.3),
            ("ENV.POLLUTION", 0.3 if org.polluting else 0.05),
            ("TAX.EVASION", 0.25),
        ):
            if rng.random() < p:
                sink.add(code, row)
        if rng.random() < 0.3:
            sink.court_case(row)
    elif r < _BAD_ORG_SHARE + _MODEL_ORG_SHARE:
        sink.add_many("CIVIL.HONOUR", row, rng.randint(1, 2))
        sink.add_many("CIVIL.CHARITY_DONATION", row, rng.randint(2, 5))


def _common(
    sink: _Sink,
    row: SubjectRow,
    negative: tuple[tuple[str, float], ...],
    positive: tuple[tuple[str, float], ...],
    scale: float,
    neg_damp: float = 1.0,
) -> None:
    rng = sink.rng
    # One propensity per subject and polarity: a careless driver also dodges fares more often.
    for table, shape, damp in ((negative, 0.45, neg_damp), (positive, 0.4, 1.0)):
        g = rng.gammavariate(shape, 1.0 / shape)
        for code, mean in table:
            sink.add_many(code, row, _poisson(rng, mean * scale * damp * g))


def _records(
    rng: random.Random,
    people: list[_Person],
    orgs: list[_Org],
    window: list[datetime.date],
    records_per_subject: float,
) -> list[RecordRow]:
    sink = _Sink(rng, len(window))
    for person in people:
        _fixed_person(sink, person)
    for org in orgs:
        _fixed_org(sink, org)

    # Calibrate the everyday behaviours so that the total meets records_per_subject; the rare
    # ones already drawn keep their shares whatever the target.
    def base(table: tuple[tuple[str, float], ...]) -> float:
        return sum(mean for _, mean in table)

    org_neg_damps = [1.0 if o.enterprise else 0.3 for o in orgs]
    expected = len(people) * (base(_PERSON_NEGATIVE) + base(_PERSON_POSITIVE)) + sum(
        d * base(_ORG_NEGATIVE) + base(_ORG_POSITIVE) for d in org_neg_damps
    )
    target = records_per_subject * (len(people) + len(orgs))
    scale = max(0.0, target - len(sink.drafts)) / expected if expected else 0.0

    for person in people:
        _common(sink, person.row, _PERSON_NEGATIVE, _PERSON_POSITIVE, scale)
    for org, damp in zip(orgs, org_neg_damps, strict=True):
        _common(sink, org.row, _ORG_NEGATIVE, _ORG_POSITIVE, scale, damp)

    sink.drafts.sort(key=itemgetter(0))  # stable: ties keep generation order
    numbers = _DocumentNumbers(rng)
    return [
        RecordRow(
            source=_SOURCE_OF[code],
            subject_id=subject_id,
            behaviour=code,
            occurred_on=window[day],
            document_ref=numbers.next(code, division, window[day].year),
            amount=amount,
            note=note,
        )
        for day, code, subject_id, division, amount, note in sink.drafts
    ]


# --- document numbers -----------------------------------------------------------------------

# A family is one numbering series: a format of (year, division, number) and whether each county
# keeps its own series (courts, district bureaus) or the city keeps one (environment, civil
# affairs). Numbers rise within a series, and the series of one source differ in their fixed
# text, so document_ref is unique per source by construction.
_Formatter = Callable[[int, str, int], str]


@dataclass(frozen=True, slots=True)
class _Family:
    name: str
    fmt: _Formatter
    per_county: bool
    first: int  # the year's first number is drawn from 1..first
    step: int  # consecutive numbers differ by 1..step (other cases, not in the city's data)


def _court(name: str, kind: str, first: int, step: int) -> _Family:
    return _Family(name, lambda y, d, n: f"({y})鲁{d[2:]}{kind}{n}号", True, first, step)


def _county(name: str, word: str, first: int, step: int) -> _Family:
    return _Family(name, lambda y, d, n: f"{_ABBR[d]}{word}〔{y}〕{n}号", True, first, step)


def _citywide(name: str, word: str, first: int, step: int) -> _Family:
    return _Family(name, lambda y, d, n: f"威{word}〔{y}〕{n}号", False, first, step)


_ENFORCEMENT = _court("court-enforcement", "执", 300, 6)
_RESUMED = _court("court-resumed", "执恢", 20, 3)
_SANCTION = _court("court-sanction", "司惩", 10, 3)
_TAX_SIMPLE = _county("tax-simple", "税简罚", 100, 4)
_TAX_PENALTY = _county("tax-penalty", "税罚", 20, 3)
_MARKET_PENALTY = _county("market-penalty", "市监罚", 30, 4)
# Traffic decisions carry a 16-digit number: division, year, sequence.
_TRAFFIC = _Family("traffic", lambda y, d, n: f"{d}{y}{n:06d}", True, 5000, 9)
_ENV = _citywide("environment", "环罚", 10, 3)

_FAMILIES: dict[str, _Family] = {
    "COURT.DEFAULT": _ENFORCEMENT,
    "COURT.EVADE_ENFORCEMENT": _ENFORCEMENT,
    "COURT.BREACH_SPENDING_BAN": _ENFORCEMENT,
    "COURT.BREACH_SETTLEMENT": _RESUMED,
    "COURT.FALSE_ASSET_REPORT": _SANCTION,
    "COURT.OBSTRUCT_ENFORCEMENT": _SANCTION,
    "TAX.LATE_FILING": _TAX_SIMPLE,
    "TAX.LATE_PAYMENT": _TAX_SIMPLE,
    "TAX.ARREARS": _county("tax-notice", "税通", 50, 4),
    "TAX.INVOICE_MISUSE": _TAX_PENALTY,
    "TAX.EVASION": _TAX_PENALTY,
    "TAX.FALSE_INVOICE": _TAX_PENALTY,
    "TAX.REFUSED_INSPECTION": _TAX_PENALTY,
    "MARKET.FALSE_ADVERTISING": _MARKET_PENALTY,
    "MARKET.FOOD_SAFETY": _MARKET_PENALTY,
    "MARKET.UNLICENSED": _MARKET_PENALTY,
    "MARKET.ABNORMAL_OPERATION": _county("market-abnormal", "市监异", 30, 4),
    "TRAFFIC.MINOR": _TRAFFIC,
    "TRAFFIC.DRUNK_DRIVING": _TRAFFIC,
    "TRANSPORT.FARE_EVASION": _citywide("transport-penalty", "交执罚", 10, 3),
    "ENV.POLLUTION": _ENV,
    "ENV.ILLEGAL_DUMPING": _ENV,
    "CIVIL.VOLUNTEER": _citywide("civil-volunteer", "民志", 500, 5),
    "CIVIL.BLOOD_DONATION": _citywide("civil-blood", "献血", 500, 5),
    "CIVIL.CHARITY_DONATION": _citywide("civil-charity", "民慈", 100, 4),
    "CIVIL.HONOUR": _citywide("civil-honour", "民表", 5, 2),
}


class _DocumentNumbers:
    """Hands out rising numbers per series and year, starting at a random offset."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._next: dict[tuple[str, str, int], int] = {}

    def next(self, code: str, division: str, year: int) -> str:
        family = _FAMILIES[code]
        key = (family.name, division if family.per_county else "", year)
        n = self._next.get(key)
        if n is None:
            n = self._rng.randint(1, family.first)
        self._next[key] = n + self._rng.randint(1, family.step)
        return family.fmt(year, division, n)


# --- at scale: a vectorised generator writing Parquet ----------------------------------------
#
# The same tables as above, drawn with NumPy a column at a time, so that ten million subjects and
# fifty million records take minutes rather than hours. The distributions are those of the
# row-wise city, simplified where a per-subject story (court cases with follow-on findings, "bad"
# and "model" subjects) would need a Python loop: one gamma-distributed propensity per subject
# spreads records unevenly, and each record's behaviour is drawn from its subject kind's
# everyday, rare and court weights. Identifiers are valid and unique (GB 11643, GB 32100).

_PERSON_WEIGHTS: tuple[tuple[str, float], ...] = (
    *_PERSON_NEGATIVE,
    *_PERSON_POSITIVE,
    *_PERSON_RARE,
    ("COURT.DEFAULT", _PERSON_COURT),
    *((code, _PERSON_COURT * p) for code, p in _COURT_FOLLOW_ONS),
)
_ORG_WEIGHTS: tuple[tuple[str, float], ...] = (
    *_ORG_NEGATIVE,
    *_ORG_POSITIVE,
    *_ORG_RARE,
    ("MARKET.FOOD_SAFETY", 0.025),
    ("ENV.POLLUTION", 0.03),
    ("COURT.DEFAULT", _ORG_COURT),
    *((code, _ORG_COURT * p) for code, p in _COURT_FOLLOW_ONS),
)
_CODES: tuple[str, ...] = tuple(sorted({code for code, _ in _PERSON_WEIGHTS + _ORG_WEIGHTS}))
_RIC_WEIGHTS = tuple(pow(13, 16 - i, 11) for i in range(17))
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_PARQUET_SOURCES: tuple[str, ...] = tuple(SOURCES)


def _ascii(rows: list[str]) -> Any:
    import numpy as np

    return np.frombuffer("".join(rows).encode("ascii"), dtype=np.uint8).reshape(len(rows), -1)


def _digits(values: Any, width: int) -> Any:
    """Non-negative integers as a (n, width) matrix of ASCII digits."""
    import numpy as np

    out = np.empty((len(values), width), dtype=np.uint8)
    rest = np.asarray(values, dtype=np.int64).copy()
    for col in range(width - 1, -1, -1):
        out[:, col] = 48 + rest % 10
        rest //= 10
    return out


def _strings(matrix: Any) -> Any:
    import numpy as np
    import pyarrow as pa

    fixed = np.ascontiguousarray(matrix).view(f"S{matrix.shape[1]}").ravel()
    return pa.array(fixed, pa.binary(matrix.shape[1])).cast(pa.string())


def _person_ids(rng: Any, divisions: Any, today: datetime.date, n: int) -> tuple[Any, Any]:
    """(ids as an (n, 18) ASCII matrix, male flags); unique, with the address code of the birth year."""
    import numpy as np

    oldest = _years_before(today, 81) + datetime.timedelta(days=1)
    span = (_years_before(today, 18) - oldest).days + 1
    ids = np.empty((n, 18), dtype=np.uint8)
    male = rng.random(n) < 0.5
    todo = np.arange(n)
    seen: set[bytes] = set()
    base = np.datetime64(oldest.isoformat(), "D")
    while len(todo):
        born = base + rng.integers(0, span, len(todo)).astype("timedelta64[D]")
        years = born.astype("datetime64[Y]").astype(np.int64) + 1970
        ymd = years * 10_000
        months = born.astype("datetime64[M]").astype(np.int64) % 12 + 1
        days = (born - born.astype("datetime64[M]")).astype(np.int64) + 1
        ymd = ymd + months * 100 + days
        m = male[todo]
        seq = np.where(m, rng.integers(0, 500, len(todo)) * 2 + 1, rng.integers(1, 500, len(todo)) * 2)
        codes = np.zeros(len(todo), dtype=np.int64)
        for division, table in _ID_ADDRESS_CODES.items():
            mine = divisions[todo] == int(division)
            for first, last, code in table:
                codes[mine & (years >= first) & (years <= last) & (codes == 0)] = int(code)
        body = np.concatenate([_digits(codes, 6), _digits(ymd, 8), _digits(seq, 3)], axis=1)
        total = ((body - 48).astype(np.int64) * np.array(_RIC_WEIGHTS)).sum(axis=1) % 11
        check = (1 - 2 * total) % 11
        check_char = np.where(check == 10, ord("X"), 48 + check).astype(np.uint8)
        candidate = np.concatenate([body, check_char[:, None]], axis=1)
        keys = candidate.view("S18").ravel()
        _, first_index = np.unique(keys, return_index=True)
        fresh = np.zeros(len(todo), dtype=bool)
        fresh[first_index] = True
        for index in np.flatnonzero(fresh):
            key = bytes(keys[index])
            if key in seen:
                fresh[index] = False
            else:
                seen.add(key)
        ids[todo[fresh]] = candidate[fresh]
        todo = todo[~fresh]
    return ids, male


def _org_ids(rng: Any, divisions: Any, prefixes: Any, n: int, taken: set[bytes]) -> Any:
    """Unified social credit codes with a valid GB 11714 organisation code inside; unique."""
    import numpy as np

    alphabet = np.frombuffer(_USCC_ALPHABET.encode(), dtype=np.uint8)
    values = np.zeros(256, dtype=np.int64)
    for index, char in enumerate(_USCC_ALPHABET):
        values[ord(char)] = index
    ids = np.empty((n, 18), dtype=np.uint8)
    todo = np.arange(n)
    while len(todo):
        k = len(todo)
        letters = rng.random(k) < 0.6
        body = np.empty((k, 8), dtype=np.uint8)
        body[:, 0], body[:, 1] = ord("M"), ord("A")
        body[:, 2:] = alphabet[rng.integers(0, len(alphabet), (k, 6))]
        numeric = _digits(rng.integers(3, 10, k) * 10**7 + rng.integers(0, 10**7, k), 8)
        body = np.where(letters[:, None], body, numeric)
        # GB 11714: int(c, 36) weighted, check 11 - sum % 11 with 10 -> X and 11 -> 0.
        as36 = np.where(body >= 65, body - 55, body - 48).astype(np.int64)
        c = 11 - (as36 * np.array(_GB11714_WEIGHTS)).sum(axis=1) % 11
        org_check = np.where(c == 10, ord("X"), np.where(c == 11, 48, 48 + c)).astype(np.uint8)
        first17 = np.concatenate(
            [_ascii(list(prefixes[todo])), _digits(divisions[todo], 6), body, org_check[:, None]], axis=1
        )
        total = (values[first17] * np.array(_USCC_WEIGHTS)).sum(axis=1)
        check = alphabet[(31 - total % 31) % 31]
        candidate = np.concatenate([first17, check[:, None]], axis=1)
        keys = candidate.view("S18").ravel()
        _, first_index = np.unique(keys, return_index=True)
        fresh = np.zeros(k, dtype=bool)
        fresh[first_index] = True
        for at in np.flatnonzero(fresh):
            key = bytes(keys[at])
            if key in taken:
                fresh[at] = False
            else:
                taken.add(key)
        ids[todo[fresh]] = candidate[fresh]
        todo = todo[~fresh]
    return ids


def _pick(rng: Any, options: Sequence[str], n: int) -> Any:
    import pyarrow as pa

    return pa.array(list(options), pa.string()).take(pa.array(rng.integers(0, len(options), n)))


def _flat(values: Any) -> Any:
    """One contiguous Arrow array (large inputs may come back chunked)."""
    import pyarrow as pa

    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _concat(*parts: Any) -> Any:
    import pyarrow as pa

    return pa.concat_arrays([_flat(p) for p in parts])


def _join(*parts: Any) -> Any:
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(*parts, "")


def generate_subjects_table(persons: int, organisations: int, *, today: datetime.date, seed: int = 2014) -> Any:
    """Persons then organisations as an Arrow table (subject_id, kind, name, legal_representative,
    division), drawn column-wise from the same tables as `generate_city`."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng([seed, 1])
    pool = np.array([int(d) for d in _DIVISION_POOL])
    p_div = pool[rng.integers(0, len(pool), persons)]
    p_ids, male = _person_ids(rng, p_div, today, persons)
    chars_m = list(_MALE_CHARS + _NEUTRAL_CHARS)
    chars_f = list(_FEMALE_CHARS + _NEUTRAL_CHARS)
    first = pa.array(np.where(male, _pick(rng, chars_m, persons), _pick(rng, chars_f, persons)), pa.string())
    second = np.where(male, _pick(rng, chars_m, persons), _pick(rng, chars_f, persons))
    second = pa.array(np.where(rng.random(persons) < 0.65, second, ""), pa.string())
    names = _join(_pick(rng, _SURNAMES, persons), first, second)

    o_div = pool[rng.integers(0, len(pool), organisations)]
    types = np.array([prefix for _kind, prefix in _ORG_TYPE_POOL])
    kinds_of = np.array([kind for kind, _prefix in _ORG_TYPE_POOL])
    chosen = rng.integers(0, len(types), organisations)
    taken = {bytes(x) for x in p_ids.view("S18").ravel()} if organisations else set()
    o_ids = _org_ids(rng, o_div, types[chosen], organisations, taken)
    o_kind = kinds_of[chosen]
    # A place word of the organisation's own division: one flat list, offsets per division.
    order = sorted(_PLACES)
    flat = [place for division in order for place in _PLACES[division]]
    offsets = np.cumsum([0] + [len(_PLACES[d]) for d in order])
    slot = np.searchsorted([int(d) for d in order], o_div)
    within = (rng.random(organisations) * (offsets[slot + 1] - offsets[slot])).astype(np.int64)
    place = pa.array(flat, pa.string()).take(pa.array(offsets[slot] + within))
    industry = _pick(rng, [i for i, _f, _p in _INDUSTRIES], organisations)
    suffix = pa.array(np.where(rng.random(organisations) < 0.1, "有限责任公司", "有限公司"), pa.string())
    enterprise_name = _join(place, _pick(rng, _BRANDS, organisations), industry, suffix)
    other_name = _join(
        place, _pick(rng, _BRANDS, organisations), _pick(rng, _NONPROFITS + _INSTITUTIONS, organisations)
    )
    o_names = pa.array(
        np.where(np.isin(o_kind, ["enterprise", "cooperative"]), enterprise_name, other_name), pa.string()
    )
    reps = names.take(pa.array(rng.integers(0, max(persons, 1), organisations))) if persons else o_names
    return pa.table(
        {
            "subject_id": _concat(_strings(p_ids), _strings(o_ids)),
            "kind": pa.array(["person"] * persons + ["organisation"] * organisations, pa.string()),
            "name": _concat(names, o_names),
            "legal_representative": _concat(pa.nulls(persons, pa.string()), reps),
            "division": _concat(pa.array(p_div.astype(str), pa.string()), pa.array(o_div.astype(str), pa.string())),
        }
    )


_FIXED_AMOUNTS: dict[str, tuple[int, ...]] = {
    "TRAFFIC.MINOR": (50, 100, 100, 150, 200),
    "TRAFFIC.DRUNK_DRIVING": (1000, 1500, 2000),
    "TRANSPORT.FARE_EVASION": (20, 50, 100),
    "TAX.LATE_FILING": (200, 500, 1000, 2000),
    "TAX.INVOICE_MISUSE": (1000, 2000, 5000, 10000),
    "TAX.REFUSED_INSPECTION": (10000, 20000, 50000),
}
_SCALED_AMOUNTS: dict[str, tuple[float, float, float, float]] = {
    "COURT": (200_000, 1.2, 3_000, 80_000_000),
    "TAX.LATE_PAYMENT": (30_000, 1.0, 500, 2_000_000),
    "TAX.ARREARS": (40_000, 1.0, 200, 10_000_000),
    "TAX.EVASION": (600_000, 1.0, 50_000, 50_000_000),
    "TAX.FALSE_INVOICE": (1_000_000, 1.0, 50_000, 100_000_000),
    "MARKET.FALSE_ADVERTISING": (50_000, 0.8, 5_000, 1_000_000),
    "MARKET.FOOD_SAFETY": (30_000, 0.8, 2_000, 500_000),
    "MARKET.UNLICENSED": (20_000, 0.8, 1_000, 200_000),
    "ENV.POLLUTION": (150_000, 0.9, 10_000, 1_000_000),
    "ENV.ILLEGAL_DUMPING": (20_000, 0.8, 5_000, 100_000),
}


def _amount_cents(rng: Any, codes: Any) -> tuple[Any, Any]:
    """(amount in cents, valid mask) per record, by behaviour, like `_amount`."""
    import numpy as np

    n = len(codes)
    cents = np.zeros(n, dtype=np.int64)
    valid = np.zeros(n, dtype=bool)
    normal = rng.standard_normal(n)
    pick = rng.random(n)
    for index, code in enumerate(_CODES):
        mine = codes == index
        if not mine.any():
            continue
        if code in _FIXED_AMOUNTS:
            options = np.array(_FIXED_AMOUNTS[code]) * 100
            cents[mine] = options[(pick[mine] * len(options)).astype(np.int64)]
            valid[mine] = True
            continue
        scale = _SCALED_AMOUNTS.get(code) or _SCALED_AMOUNTS.get(code.split(".", 1)[0])
        if scale is None:
            continue  # praise and the abnormal-operations list carry no sum
        median, sigma, lo, hi = scale
        value = np.clip(np.exp(np.log(median) + sigma * normal[mine]), lo, hi)
        cents[mine] = np.round(value * 100).astype(np.int64)
        valid[mine] = True
    return cents, valid


def generate_records_tables(
    subjects: Any,
    records: int,
    *,
    today: datetime.date,
    years: int = 3,
    seed: int = 2014,
    chunk: int = 5_000_000,
) -> Iterator[tuple[str, Any]]:
    """Records as (source, Arrow table) chunks with the import columns; document_ref is unique per
    source across all chunks (a running number in each source's document series)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng([seed, 2])
    n = subjects.num_rows
    if n == 0 or records <= 0:
        return
    is_person = pc.equal(subjects.column("kind"), "person").to_numpy(zero_copy_only=False)
    division = pc.cast(subjects.column("division"), pa.int64()).to_numpy()
    propensity = rng.gamma(0.45, 1 / 0.45, n)
    cumulative = np.cumsum(propensity)
    cumulative /= cumulative[-1]
    code_index = {code: i for i, code in enumerate(_CODES)}
    tables = {}
    for kind, weights in (("person", _PERSON_WEIGHTS), ("organisation", _ORG_WEIGHTS)):
        p = np.zeros(len(_CODES))
        for code, w in weights:
            p[code_index[code]] += w
        tables[kind] = np.cumsum(p / p.sum())
    source_of = np.array([_PARQUET_SOURCES.index(_SOURCE_OF[c]) for c in _CODES])
    start = _years_before(today, years)
    span = (today - start).days
    base = np.datetime64(start.isoformat(), "D")
    numbers = dict.fromkeys(_PARQUET_SOURCES, 0)
    codes_arr = pa.array(list(_CODES), pa.string())
    note_codes, note_texts = [], []
    for code in _CODES:
        for text in _NOTES.get(code, ()):
            note_codes.append(code_index[code])
            note_texts.append(text)
    note_codes_np = np.array(note_codes)
    note_first = np.searchsorted(note_codes_np, np.arange(len(_CODES)))
    note_count = np.bincount(note_codes_np, minlength=len(_CODES))
    notes_arr = pa.array(note_texts, pa.string())
    counties = [371002, 371003, 371082, 371083]
    abbr = pa.array([_ABBR[str(x)] for x in counties], pa.string())
    done = 0
    while done < records:
        k = min(chunk, records - done)
        done += k
        who = np.searchsorted(cumulative, rng.random(k), side="right").clip(0, n - 1)
        person = is_person[who]
        u = rng.random(k)
        drawn = np.where(
            person,
            np.searchsorted(tables["person"], u, side="right"),
            np.searchsorted(tables["organisation"], u, side="right"),
        ).clip(0, len(_CODES) - 1)
        day = base + rng.integers(0, span, k).astype("timedelta64[D]")
        cents, has_amount = _amount_cents(rng, drawn)
        note_pick = note_first[drawn] + (rng.random(k) * np.maximum(note_count[drawn], 1)).astype(np.int64)
        has_note = (rng.random(k) >= 0.25) & (note_count[drawn] > 0)
        src = source_of[drawn]
        year = day.astype("datetime64[Y]").astype(np.int64) + 1970
        for s_index, source in enumerate(_PARQUET_SOURCES):
            mine = np.flatnonzero(src == s_index)
            if len(mine) == 0:
                continue
            count = len(mine)
            serial = np.arange(numbers[source] + 1, numbers[source] + count + 1)
            numbers[source] += count
            y = pa.array(year[mine].astype(str), pa.string())
            nstr = pa.array(serial.astype(str), pa.string())
            d = division[who[mine]]
            if source == "court":
                ref = _join("(", y, ")鲁", pa.array((d % 10_000).astype(str), pa.string()), "执", nstr, "号")
            elif source in {"tax", "market"}:
                a = abbr.take(pa.array(np.searchsorted(counties, d)))
                ref = _join(a, "税罚〔" if source == "tax" else "市监罚〔", y, "〕", nstr, "号")
            elif source == "transport":
                ref = _join(pa.array(d.astype(str), pa.string()), y, pc.utf8_lpad(nstr, 8, "0"))
            else:
                ref = _join("威环罚〔" if source == "environment" else "威民〔", y, "〕", nstr, "号")
            amounts = pa.array(cents[mine], pa.int64()).cast(pa.decimal128(20, 0))
            amounts = pc.divide(amounts.cast(pa.decimal128(20, 2)), pa.scalar(100, pa.decimal128(5, 0)))
            amounts = pc.if_else(pa.array(has_amount[mine]), amounts.cast(pa.decimal128(18, 2)), None)
            picked = notes_arr.take(pa.array(note_pick[mine] % max(len(note_texts), 1)))
            notes = pc.if_else(pa.array(has_note[mine]), picked, None)
            yield (
                source,
                pa.table(
                    {
                        "subject_id": subjects.column("subject_id").take(pa.array(who[mine])),
                        "behaviour": codes_arr.take(pa.array(drawn[mine])),
                        "occurred_on": pa.array(day[mine], pa.date32()),
                        "document_ref": ref,
                        "amount": amounts,
                        "note": notes,
                    }
                ),
            )


def write_parquet(
    out_dir: pathlib.Path,
    *,
    persons: int,
    organisations: int,
    records: int,
    today: datetime.date,
    seed: int = 2014,
    years: int = 3,
    chunk: int = 5_000_000,
) -> dict[str, pathlib.Path]:
    """Write subjects.parquet and one records-SOURCE.parquet per source (the import columns).

    Returns the written paths keyed by file name, like `write_files`.
    """
    import pyarrow.parquet as pq

    out_dir.mkdir(parents=True, exist_ok=True)
    subjects = generate_subjects_table(persons, organisations, today=today, seed=seed)
    paths = {"subjects.parquet": out_dir / "subjects.parquet"}
    pq.write_table(subjects, paths["subjects.parquet"])
    writers: dict[str, Any] = {}
    try:
        for source, table in generate_records_tables(
            subjects.select(["subject_id", "kind", "division"]),
            records,
            today=today,
            years=years,
            seed=seed,
            chunk=chunk,
        ):
            if source not in writers:
                path = out_dir / f"records-{source}.parquet"
                paths[path.name] = path
                writers[source] = pq.ParquetWriter(path, table.schema)
            writers[source].write_table(table)
    finally:
        for writer in writers.values():
            writer.close()
    return paths
