//! Lab results and reports as one model, whichever way they arrive (issue 21): HL7 v2
//! ORU^R01 over MLLP ([`hl7`]) and FHIR R4 Observation and DiagnosticReport ([`fhir`]) are
//! mapped here, in one place, to the same [`model::NewOrder`] and [`model::NewLabResult`];
//! units as laboratories write them get their UCUM code ([`units`]). Pure: no I/O, no storage,
//! no clocks — the region's zone is passed in. Whose patient it is, where it is stored and who
//! may send it are the archive's use cases (`huren-archive::lab`, `submit`).

pub mod fhir;
pub mod hl7;
pub mod model;
pub mod units;

#[cfg(test)]
mod tests {
    //! The point of this crate: the same glucose result sent over HL7 v2 and over FHIR is the
    //! same result once mapped.
    use crate::model::NewLabResult;

    const ZONE: &time_tz::Tz = time_tz::timezones::db::asia::SHANGHAI;

    fn from_hl7() -> NewLabResult {
        let text = "MSH|^~\\&|LIS|H500002|HUREN|REGION|20261207093000||ORU^R01|M1|P|2.5\r\
                    PID|1||P1^^^H500002^MR||张^三||19800101|M\r\
                    OBR|1|PL1|FL1|GLU^血糖^L|||20261207080000|||||||||||||||20261207090000|||F\r\
                    OBX|1|NM|2345-7^Glucose^LN||5.6|mmol/L|3.9-6.1|N|||F|||20261207080000\r";
        let m = huren_hl7::Message::parse(text).expect("message");
        let mut orders = crate::hl7::orders(&m, ZONE).expect("mapped");
        assert_eq!(orders.len(), 1);
        orders.remove(0).results.remove(0)
    }

    fn from_fhir() -> NewLabResult {
        let v = serde_json::json!({
            "resourceType": "Observation",
            "status": "final",
            "code": { "coding": [{ "system": "http://loinc.org", "code": "2345-7", "display": "Glucose" }] },
            "effectiveDateTime": "2026-12-07T08:00:00+08:00",
            "issued": "2026-12-07T09:00:00+08:00",
            "valueQuantity": { "value": 5.6, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L" },
            "referenceRange": [{ "text": "3.9-6.1" }],
            "interpretation": [{ "coding": [{ "code": "N" }] }]
        });
        crate::fhir::parse_observation(&v, ZONE).expect("mapped")
    }

    #[test]
    fn one_result_whichever_way_it_came() {
        let (h, f) = (from_hl7(), from_fhir());
        let same = |r: &NewLabResult| {
            (
                r.code.clone(),
                r.code_system.clone(),
                r.value_num,
                r.unit_ucum.clone(),
                r.observed_instant,
                r.reported_instant,
            )
        };
        assert_eq!(same(&h), same(&f));
        assert_eq!(h.code_system.as_deref(), Some("LN"));
        assert_eq!(h.unit_ucum.as_deref(), Some("mmol/L"));
        // 08:00 in Chongqing is 00:00 UTC.
        assert_eq!(h.observed_instant, Some(1_796_601_600));
    }
}
