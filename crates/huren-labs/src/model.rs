//! Orders, reports and results as huren stores them, whichever way they came: an HL7 v2 OBR
//! with its OBX segments or a FHIR DiagnosticReport with its Observations become the same
//! [`NewOrder`] and [`NewLabResult`].

/// One observation to store.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewLabResult {
    pub performing_lab: Option<String>,
    pub placer_order: Option<String>,
    pub filler_order: Option<String>,
    pub order_code: Option<String>,
    pub order_text: Option<String>,
    pub set_id: Option<i64>,
    /// FHIR `Observation.identifier` (first), when sent.
    pub identifier: Option<(String, String)>,
    pub value_type: Option<String>,
    pub code: String,
    pub code_text: Option<String>,
    pub code_system: Option<String>,
    /// As sent (SN written out: `<0.01`, `1:320`; coded as `code^text`).
    pub value: Option<String>,
    /// The number of a numeric value (NM, SN with one number), for range comparison.
    pub value_num: Option<f64>,
    /// `<`, `<=`, `>=`, `>` of a structured numeric value.
    pub comparator: Option<String>,
    pub unit: Option<String>,
    /// The unit in UCUM when huren knows the sent unit (`×10^9/L` → `10*9/L`).
    pub unit_ucum: Option<String>,
    pub reference_range: Option<String>,
    pub abnormal_flag: Option<String>,
    pub status: Option<String>,
    pub specimen: Option<String>,
    pub observed_at: Option<String>,
    pub observed_instant: Option<i64>,
    pub reported_at: Option<String>,
    pub reported_instant: Option<i64>,
}

/// Report category (HL7 v2 table 0074 diagnostic service section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportCategory {
    Lab,
    Imaging,
}

impl ReportCategory {
    pub fn code(self) -> &'static str {
        match self {
            ReportCategory::Lab => "LAB",
            ReportCategory::Imaging => "RAD",
        }
    }
}

/// One order: an HL7 OBR with its observations, or a FHIR DiagnosticReport. An imaging report
/// is an order of category RAD with text; a lab order is category LAB with results.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    pub category: ReportCategory,
    pub study_uid: Option<String>,
    pub accession_number: Option<String>,
    pub placer_order: Option<String>,
    pub filler_order: Option<String>,
    pub identifier: Option<(String, String)>,
    pub procedure_code: Option<String>,
    pub procedure_code_system: Option<String>,
    pub procedure_text: Option<String>,
    pub text: Option<String>,
    pub status: Option<String>,
    pub specimen: Option<String>,
    pub effective_at: Option<String>,
    pub effective_instant: Option<i64>,
    pub reported_at: Option<String>,
    pub reported_instant: Option<i64>,
    pub results: Vec<NewLabResult>,
}
