"""Study-wide exports: the datasets declared once (`datasets`), written as a CSV bundle, CDISC ODM 1.3.2 or a FHIR
R4B Bundle, with a masked variant for the outcome assessor (`masked`); `run` picks the scope and audits."""
