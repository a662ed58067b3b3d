"""The line we hold: behaviours no scheme may score, refused at load time in English and Chinese.

The patterns are deliberately specific. "Blood type" is protected but voluntary blood donation is a
civic act that schemes reward; "medical history" is protected but medical-insurance fraud by a
hospital is an ordinary regulatory breach. A broad word list would refuse legitimate schemes and
teach operators to misspell around it, so each category names the concept, not a loose keyword.
Where a word has an ordinary legal sense too, the pattern carves that sense out: "good faith"
and "bad faith" are the vocabulary of credit itself, a "street race" is a traffic offence, and
in Chinese -性行为 after an adjective (欺诈性行为, 误导性行为, 排他性行为) is fraudulent,
misleading or exclusionary conduct, not sexual behaviour. Chinese wordings are patterns too,
for the same reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xinyong.errors import Problem


@dataclass(frozen=True)
class ProtectedCategory:
    name: str
    english: tuple[str, ...]
    chinese: tuple[str, ...]

    def matches(self, text: str) -> str | None:
        """The wording that matched, or None."""
        lowered = text.lower()
        for pattern in self.english:
            found = re.search(pattern, lowered)
            if found:
                return found.group(0)
        for pattern in self.chinese:
            found = re.search(pattern, text)
            if found:
                return found.group(0)
        return None


PROTECTED_CATEGORIES: tuple[ProtectedCategory, ...] = (
    ProtectedCategory(
        "political opinion",
        (
            r"\bpolitic\w*",
            r"\bcritici[sz]\w* (of )?(the )?(government|party|officials?|leaders?|authorities)\b",
        ),
        ("政治", "政见", "反动", "妄议", "批评政府"),
    ),
    ProtectedCategory("petitioning", (r"\bpetition\w*",), ("上访", "信访", "缠访", "闹访")),
    ProtectedCategory(
        "speech or online comments",
        (
            r"\bspeech\b",
            r"\bonline (comment|post|remark|opinion)\w*",
            r"\bsocial media\b",
            r"\b(comment|post)\w* online\b",
            r"\brumou?r\w*",
        ),
        ("言论", "网络评论", "网上评论", "发帖", "网络发言", "谣言"),
    ),
    ProtectedCategory(
        "religion",
        (
            r"\breligio\w*",
            r"\bworship\w*",
            r"(?<!good )(?<!good-)(?<!bad )(?<!bad-)\bfaith\b",
            r"\bchurch\w*",
            r"\bmosques?\b",
            r"\b(christian|muslim|buddhist|islam|taoist)\w*",
        ),
        ("宗教", "信教", "礼拜", "信仰", "教会", "清真寺"),
    ),
    ProtectedCategory(
        "ethnicity",
        (
            r"\bethnic\w*",
            r"\bracial\w*",
            r"(?<!street )(?<!road )(?<!drag )(?<!horse )\brace\b",
            r"\buy?ghurs?\b",
            r"\btibetans?\b",
        ),
        ("民族", "种族", "维吾尔", "藏族", "回族"),
    ),
    ProtectedCategory(
        "health or medical history",
        (
            r"\bhealth (condition|status|record|history)\w*",
            r"\bmedical (history|record|condition)\w*",
            r"\billness\w*",
            r"\bdisease\w*",
            r"\bdiagnos\w*",
            r"\bmental health\b",
            r"\bpregnan\w*",
            r"\bhiv\b",
            r"\bhepatitis\b",
        ),
        ("病史", "病历", "健康状况", "疾病", "患病", "怀孕", "艾滋", "乙肝", "精神病"),
    ),
    ProtectedCategory("genetics", (r"\bgenetic\w*", r"\bgenes?\b", r"\bdna\b", r"\bgenom\w*"), ("基因", "遗传")),
    ProtectedCategory(
        "biometrics",
        (
            r"\bbiometric\w*",
            r"\bfingerprint\w*",
            r"\bfac(e|ial) (recognition|scan|image|data)\w*",
            r"\biris\b",
            r"\bvoiceprint\w*",
        ),
        ("生物识别", "指纹", "人脸", "面部识别", "虹膜", "声纹"),
    ),
    ProtectedCategory("blood type", (r"\bblood (type|group)\w*",), ("血型",)),
    ProtectedCategory(
        "sexual life",
        (
            r"\bsex(ual)? (life|orientation|behaviou?r|conduct|relations\w*)\b",
            r"\bsexuality\b",
            r"\bhomosexual\w*",
            r"\blgbt\w*",
            r"\bextramarital\b",
            r"\badulter(y|ous|ers?)\b",
        ),
        # 性行为 only where it does not end an adjective in -性 (欺诈性行为: fraud)
        (
            "性生活",
            "性取向",
            r"(?<![^的生当外有与无])性行为",
            "性关系",
            "性伴侣",
            "同性恋",
            "婚外情",
        ),
    ),
    ProtectedCategory(
        "trade-union membership",
        (r"\b(trade|labou?r)[ -]union\w*", r"\bunion membership\b"),
        ("工会",),
    ),
    ProtectedCategory(
        "family relations",
        (
            r"\bfilial\w*",
            r"\bvisit\w* (to )?(\w+ )?parents\b",
            r"\bfamily relation\w*",
            r"\bdivorc\w*",
            r"\b(elderly|aged) parents\b",
        ),
        ("孝", "探望父母", "看望父母", "常回家看看", "家庭关系", "离婚", "赡养"),
    ),
)


def offending_category(behaviour: dict[str, Any]) -> tuple[ProtectedCategory, str] | None:
    """The protected category a behaviour concerns, judged on its code, titles and description.

    It reads the raw entry of the scheme file, so that a refusal is reported even when the same
    file has other mistakes, and a behaviour cannot dodge the screen by failing validation first.
    """
    code_words = re.sub(r"[._]+", " ", str(behaviour.get("code") or ""))
    texts = [code_words] + [str(behaviour.get(key) or "") for key in ("title", "title_zh", "description")]
    for category in PROTECTED_CATEGORIES:
        for text in texts:
            wording = category.matches(text)
            if wording:
                return category, wording
    return None


def screen_behaviours(behaviours: Any, line_of: Callable[[int], int | None]) -> list[Problem]:
    """One problem per behaviour concerning a protected category; empty when the scheme is fine."""
    if not isinstance(behaviours, list):
        return []
    problems = []
    for index, behaviour in enumerate(behaviours):
        if not isinstance(behaviour, dict):
            continue
        found = offending_category(behaviour)
        if found is None:
            continue
        category, wording = found
        line = line_of(index)
        code, title = behaviour.get("code"), behaviour.get("title")
        problems.append(
            Problem(
                f"behaviours[{index}] {code} (line {line})",
                f"behaviour {code} '{title}' concerns {category.name} "
                f"(matched '{wording}'), a protected category that no scheme may score",
                line=line,
                column=f"behaviours[{index}]",
            )
        )
    return problems
