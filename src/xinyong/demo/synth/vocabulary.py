"""The words both generators draw from: the catalogue of sources and behaviours, the city's
divisions and places, and the characters and words that names are made of.

These are plain tables, so that the row-wise city (`city.py`) and the vectorised population
(`population.py`) draw from one definition; repetition inside a table is its weighting.
"""

from __future__ import annotations

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

SOURCE_OF: dict[str, str] = {code: src for src, codes in SOURCES.items() for code in codes}

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
DIVISION_POOL: tuple[str, ...] = ("371082",) * 40 + ("371002",) * 30 + ("371003",) * 18 + ("371083",) * 12

# How a county-level body is named: districts carry the city's name, county-level cities do not.
COUNTY_NAMES: dict[str, str] = {
    "371002": "威海市环翠区",
    "371003": "威海市文登区",
    "371082": "荣成市",
    "371083": "乳山市",
}

PLACES: dict[str, tuple[str, ...]] = {
    "371002": ("威海市", "威海", "威海市环翠区"),
    "371003": ("威海市文登区", "文登", "威海"),
    "371082": ("荣成市", "荣成", "石岛", "威海"),
    "371083": ("乳山市", "乳山", "威海"),
}

TOWNS: dict[str, tuple[str, ...]] = {
    "371002": ("张村", "羊亭", "温泉", "孙家疃", "桥头", "嵩山"),
    "371003": ("泽头", "张家产", "葛家", "侯家", "宋村", "大水泊"),
    "371082": ("石岛", "俚岛", "成山", "港西", "人和", "寻山", "埠柳", "上庄"),
    "371083": ("白沙滩", "海阳所", "育黎", "冯家", "夏村", "南黄"),
}

# --- names ----------------------------------------------------------------------------------

# Repetition is the weighting: the commonest surnames appear several times; 于 丛 鞠 毕 曲 初
# are frequent on the Jiaodong peninsula, which makes the population look local.
SURNAMES: tuple[str, ...] = tuple(
    "王李张刘陈" * 6
    + "杨黄赵吴周徐孙马朱胡郭于姜丛鞠毕曲初" * 3
    + "何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢崔钟"
    + "谭陆汪范金石廖贾夏付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴孔汤"
)
MALE_CHARS = "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆旭宁龙林阳建国峰东海成志文德永"
FEMALE_CHARS = "芳娜敏静丽艳娟霞秀玲燕婷雪慧红琳颖倩洁晶玉梅兰萍佳欣悦怡璐丹月晓春"
NEUTRAL_CHARS = "子晨嘉思雨欣诗一瑞安乐新立德金海"

# Shared brand words make fuzzy and pinyin search interesting: many companies contain 海润
# (hairun) or 华信 (huaxin); the first entries are repeated so they recur more often.
BRANDS: tuple[str, ...] = (
    ("海润", "华信", "鑫源", "海洋", "金海") * 4
    + (
        "恒通", "宏达", "泰和", "永兴", "海天", "东方", "蓝海", "瑞丰", "福润", "鸿运",
        "兴业", "信达", "远洋", "海之宝", "盛泰", "利民", "鼎盛", "海丰", "富华", "万通",
        "新世纪", "成山", "龙海", "佳和", "顺达", "海韵", "天润", "恒源", "嘉诚", "汇通",
        "中泰", "海汇", "金帆", "银海", "诚信", "北方", "海星", "润泽", "华夏", "安泰",
    )
)  # fmt: skip

# (industry word, can breach food rules, can pollute)
INDUSTRIES: tuple[tuple[str, bool, bool], ...] = (
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
COOP_PRODUCTS = (
    "海带养殖",
    "海参养殖",
    "苹果种植",
    "花生种植",
    "蔬菜种植",
    "茶叶种植",
    "农机服务",
)
ASSOCIATION_TRADES = (
    "水产品加工行业协会", "物流协会", "餐饮烹饪协会", "个体劳动者协会", "软件行业协会",
    "建筑业协会", "旅游协会", "青年志愿者协会", "企业家协会", "渔业协会",
)  # fmt: skip
CHAMBER_ORIGINS = ("温州", "福建", "浙江", "潮汕", "江苏", "东北", "青岛", "烟台")
NONPROFITS = ("职业培训学校", "养老服务中心", "社会工作服务中心", "文化艺术培训中心")
INSTITUTIONS = (
    "公共资源交易中心", "图书馆", "综合检验检测中心", "城市建设服务中心", "渔业技术推广站",
    "融媒体中心", "实验小学", "第一中学", "第二中学", "职业中等专业学校", "人民医院",
    "不动产登记中心", "农业技术推广中心",
)  # fmt: skip

# --- kinds of organisation ------------------------------------------------------------------

# (organisation type, USCC registration authority + entity type, weight out of 100)
ORG_TYPES: tuple[tuple[str, str, int], ...] = (
    ("enterprise", "91", 82),
    ("cooperative", "93", 6),
    ("association", "51", 4),
    ("nonprofit", "52", 3),
    ("institution", "12", 5),
)
ORG_TYPE_POOL: tuple[tuple[str, str], ...] = tuple(
    (kind, prefix) for kind, prefix, weight in ORG_TYPES for _ in range(weight)
)
