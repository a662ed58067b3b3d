"""How often each behaviour happens, and the sum and note a record of it carries.

Both generators draw from these tables: the row-wise city subject by subject (`city.py`), the
vectorised population as one weight per behaviour and kind of subject (`population.py`).
"""

from __future__ import annotations

# --- how often ------------------------------------------------------------------------------

# Everyday behaviours: expected count per subject over the window before calibration. Counts
# are Poisson with a per-subject gamma-distributed propensity (a negative binomial), which gives
# many subjects with none and a long tail with many.
PERSON_NEGATIVE: tuple[tuple[str, float], ...] = (
    ("TRAFFIC.MINOR", 1.1),
    ("TRANSPORT.FARE_EVASION", 0.06),
)
PERSON_POSITIVE: tuple[tuple[str, float], ...] = (
    ("CIVIL.VOLUNTEER", 0.75),
    ("CIVIL.BLOOD_DONATION", 0.12),
    ("CIVIL.CHARITY_DONATION", 0.15),
)
ORG_NEGATIVE: tuple[tuple[str, float], ...] = (
    ("TAX.LATE_FILING", 0.6),
    ("TAX.LATE_PAYMENT", 0.3),
    ("MARKET.ABNORMAL_OPERATION", 0.08),
)
ORG_POSITIVE: tuple[tuple[str, float], ...] = (("CIVIL.CHARITY_DONATION", 0.25),)

# Rare behaviours: probability of one record per subject; not scaled by records_per_subject so
# that the shares (about 2% of persons and 4% of organisations in default) stay put.
PERSON_RARE: tuple[tuple[str, float], ...] = (
    ("TRAFFIC.DRUNK_DRIVING", 0.006),
    ("TAX.ARREARS", 0.01),
    ("CIVIL.HONOUR", 0.01),
)
ORG_RARE: tuple[tuple[str, float], ...] = (
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
# Court cases: probability of a default per subject; a case keeps one sum through its findings.
PERSON_COURT = 0.015
ORG_COURT = 0.03
# A court default often brings further enforcement findings in the same case.
COURT_FOLLOW_ONS: tuple[tuple[str, float], ...] = (
    ("COURT.EVADE_ENFORCEMENT", 0.2),
    ("COURT.BREACH_SPENDING_BAN", 0.12),
    ("COURT.FALSE_ASSET_REPORT", 0.06),
    ("COURT.OBSTRUCT_ENFORCEMENT", 0.04),
    ("COURT.BREACH_SETTLEMENT", 0.08),
)

# --- what a record carries ------------------------------------------------------------------

NOTES: dict[str, tuple[str, ...]] = {
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
ORG_HONOURS = ("获评守合同重信用企业", "获评市级诚信示范单位", "获评纳税信用示范单位")

# The sum at stake is the unpaid judgment (COURT.*), the tax concerned (TAX.*), else the fine;
# praise (CIVIL.*) and the abnormal-operations list carry none. Fines of fixed tariffs are drawn
# from their tariff (repetition is the weighting) ...
FIXED_AMOUNTS: dict[str, tuple[int, ...]] = {
    "TRAFFIC.MINOR": (50, 100, 100, 150, 200),
    "TRAFFIC.DRUNK_DRIVING": (1000, 1500, 2000),
    "TRANSPORT.FARE_EVASION": (20, 50, 100),
    "TAX.LATE_FILING": (200, 500, 1000, 2000),
    "TAX.INVOICE_MISUSE": (1000, 2000, 5000, 10000),
    "TAX.REFUSED_INSPECTION": (10000, 20000, 50000),
}
# ... and the others from a log-normal: (median in yuan, sigma, lowest, highest).
SCALED_AMOUNTS: dict[str, tuple[float, float, float, float]] = {
    "TAX.LATE_PAYMENT": (30_000, 1.0, 500, 2_000_000),
    "TAX.EVASION": (600_000, 1.0, 50_000, 50_000_000),
    "TAX.FALSE_INVOICE": (1_000_000, 1.0, 50_000, 100_000_000),
    "MARKET.FALSE_ADVERTISING": (50_000, 0.8, 5_000, 1_000_000),
    "MARKET.FOOD_SAFETY": (30_000, 0.8, 2_000, 500_000),
    "MARKET.UNLICENSED": (20_000, 0.8, 1_000, 200_000),
    "ENV.POLLUTION": (150_000, 0.9, 10_000, 1_000_000),
    "ENV.ILLEGAL_DUMPING": (20_000, 0.8, 5_000, 100_000),
}
# Judgments (all COURT.* of one case share the sum) and tax arrears depend on who owes them.
SCALED_AMOUNTS_BY_KIND: dict[str, dict[str, tuple[float, float, float, float]]] = {
    "person": {
        "COURT": (60_000, 1.0, 3_000, 3_000_000),
        "TAX.ARREARS": (8_000, 1.0, 200, 10_000_000),
    },
    "organisation": {
        "COURT": (800_000, 1.1, 20_000, 80_000_000),
        "TAX.ARREARS": (80_000, 1.0, 200, 10_000_000),
    },
}
