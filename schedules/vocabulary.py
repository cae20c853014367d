"""The fixed lists of adverse-event reports: PRO-CTCAE-based terms (with labels), severities, relatedness,
outcomes, seriousness criteria and actions taken with the study drug (CTCAE v5 terms: schedules.ctcae)."""

from __future__ import annotations

AE_TERMS = (
    "injection_site_reaction",
    "fever",
    "fatigue",
    "chills_flu_like",
    "rash",
    "nausea",
    "headache",
    "vomiting",
    "diarrhea",
    "muscle_pain",
    "joint_pain",
    "cough",
    "shortness_of_breath",
    "dizziness",
    "itching",
    "swelling",
    "other",
)
# Labels a participant or nurse reads; the code is what is stored (PRO-CTCAE symptom terms plus the trial's own).
AE_TERM_LABELS = {
    "injection_site_reaction": {"en": "Injection-site reaction", "zh-CN": "注射部位反应"},
    "fever": {"en": "Fever", "zh-CN": "发热"},
    "fatigue": {"en": "Fatigue", "zh-CN": "乏力"},
    "chills_flu_like": {"en": "Chills / flu-like symptoms", "zh-CN": "寒战 / 流感样症状"},
    "rash": {"en": "Rash", "zh-CN": "皮疹"},
    "nausea": {"en": "Nausea", "zh-CN": "恶心"},
    "headache": {"en": "Headache", "zh-CN": "头痛"},
    "vomiting": {"en": "Vomiting", "zh-CN": "呕吐"},
    "diarrhea": {"en": "Diarrhea", "zh-CN": "腹泻"},
    "muscle_pain": {"en": "Muscle pain", "zh-CN": "肌肉疼痛"},
    "joint_pain": {"en": "Joint pain", "zh-CN": "关节疼痛"},
    "cough": {"en": "Cough", "zh-CN": "咳嗽"},
    "shortness_of_breath": {"en": "Shortness of breath", "zh-CN": "气短"},
    "dizziness": {"en": "Dizziness", "zh-CN": "头晕"},
    "itching": {"en": "Itching", "zh-CN": "瘙痒"},
    "swelling": {"en": "Swelling", "zh-CN": "肿胀"},
    "other": {"en": "Other (describe)", "zh-CN": "其他（请描述）"},
}
# The term an injection site is recorded with (the site of the latest injection before the report).
INJECTION_SITE_TERM = "injection_site_reaction"
# How a VAS was measured: a number typed (SMS, a nurse, a client sending no mode) or a mark on the app line.
VAS_MODES = ("sms_numeric", "vas_line")
SEVERITIES = ("mild", "moderate", "severe")
RELATEDNESS = ("not_related", "unlikely", "possible", "probable", "definite")
OUTCOMES = ("recovered", "recovering", "not_recovered", "recovered_with_sequelae", "fatal", "unknown")
SERIOUS_CRITERIA = (
    "death",
    "life_threatening",
    "hospitalisation",
    "disability",
    "congenital_anomaly",
    "other_important",
)
# What was done with the study drug because of the event (CDISC AEACN, E2B G.k.8). The control arm has no study
# drug, so the answer tells the arm: the masked assessor never sees it.
ACTIONS_TAKEN = (
    "dose_not_changed",
    "drug_interrupted",
    "drug_withdrawn",
    "dose_reduced",
    "not_applicable",
    "unknown",
)
# What a follow-up may change after the first report (SAE follow-up: a discharge letter, a call back).
FOLLOW_UP_FIELDS = ("outcome", "stop_date", "ongoing", "action_taken", "narrative")
# What completing a report into an SAE-ready record sets (schedules.ae_record); the free text is never changed.
RECORD_FIELDS = (
    "ctcae_term",
    "onset_date",
    "stop_date",
    "severity",
    "ongoing",
    "went_to_hospital",
    "action_taken",
    "aware_at",
    "narrative",
)
NARRATIVE_MAX = 10_000
# What an investigator's electronic signature means (21 CFR 11.50(a)(3)): stored with the signature, shown with it.
SIGNATURE_MEANINGS = ("reviewed", "approved")
SIGNATURE_MEANING_LABELS = {
    "reviewed": "Reviewed: I have reviewed this record",
    "approved": "Approved: I approve this assessment",
}
