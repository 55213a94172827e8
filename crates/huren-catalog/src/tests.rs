use super::*;
use time::macros::date;

const ITEMS: &str = "\u{feff}code,kind,category,name_zh,name_en,modality,body_part,method,loinc,validity_days,hr_scope,equivalent
CT-CHEST-PLAIN,imaging,CT,胸部CT平扫,Chest CT plain,ct,chest,平扫,,90,川渝HR,
LAB-GLU,lab,临床化学,葡萄糖,Glucose,,,,2345-7,30,川渝HR,
LAB-GLU-POC,lab,临床化学,葡萄糖(床旁),Glucose (point of care),,,,,30,,LAB-GLU
";

#[test]
fn items_parse_with_bom_uppercase_modality_and_equivalents() {
    let items = parse_items(ITEMS).unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].modality.as_deref(), Some("CT"));
    assert_eq!(items[0].body_part.as_deref(), Some("CHEST"));
    assert_eq!(items[1].loinc.as_deref(), Some("2345-7"));
    assert_eq!(items[2].equivalent, vec!["LAB-GLU".to_owned()]);
    assert_eq!(items[0].kind, ItemKind::Imaging);
}

#[test]
fn every_bad_line_is_named_and_nothing_is_taken() {
    let bad = "code,kind,category,name_zh,name_en,modality,body_part,method,loinc,validity_days,hr_scope,equivalent
A,imaging,CT,甲,,,,,,90,,
B,lab,检验,乙,,,,,,0,,
C,x-ray,检验,丙,,,,,,30,,
D,lab,检验,丁,,,,,,30,,NOPE
";
    let errs = parse_items(bad).unwrap_err();
    let lines: Vec<u64> = errs.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 3, 4]);
    assert!(errs[0].message.contains("modality"));
    assert!(errs[1].message.contains("validity_days"));
    let dup = "code,kind,category,name_zh,name_en,modality,body_part,method,loinc,validity_days,hr_scope,equivalent
A,lab,检验,甲,,,,,,30,,
A,lab,检验,乙,,,,,,30,,
";
    assert_eq!(parse_items(dup).unwrap_err()[0].line, 3);
    assert_eq!(parse_items("code,kind\nA,lab\n").unwrap_err()[0].line, 1);
    let unknown_equivalent = "code,kind,category,name_zh,name_en,modality,body_part,method,loinc,validity_days,hr_scope,equivalent
D,lab,检验,丁,,,,,,30,,NOPE
";
    assert!(
        parse_items(unknown_equivalent).unwrap_err()[0]
            .message
            .contains("NOPE")
    );
}

#[test]
fn money_is_exact() {
    assert_eq!(yuan_to_fen("128"), Some(12_800));
    assert_eq!(yuan_to_fen("128.5"), Some(12_850));
    assert_eq!(yuan_to_fen("0.07"), Some(7));
    assert_eq!(yuan_to_fen("1.005"), None);
    assert_eq!(yuan_to_fen("-3"), None);
    assert_eq!(yuan_to_fen("1e3"), None);
}

fn price(region: &str, grade: &str, fen: i64, from: Date, to: Option<Date>) -> Price {
    Price {
        item_code: "CT-CHEST-PLAIN".into(),
        price_region: region.into(),
        institution_grade: grade.into(),
        price_fen: fen,
        valid_from: from,
        valid_to: to,
    }
}

#[test]
fn the_most_specific_current_price_applies() {
    let prices = vec![
        price("*", "*", 10_000, date!(2024 - 01 - 01), None),
        price("重庆", "*", 12_000, date!(2024 - 01 - 01), None),
        price(
            "重庆",
            "tertiary",
            15_000,
            date!(2024 - 01 - 01),
            Some(date!(2025 - 01 - 01)),
        ),
        price("重庆", "tertiary", 14_000, date!(2025 - 01 - 01), None),
    ];
    let p = |region, grade, d| {
        effective_price(&prices, "CT-CHEST-PLAIN", region, grade, d).map(|p| p.price_fen)
    };
    assert_eq!(
        p(Some("重庆"), Some("tertiary"), date!(2024 - 12 - 31)),
        Some(15_000)
    );
    // valid_to is exclusive: the new price starts that day.
    assert_eq!(
        p(Some("重庆"), Some("tertiary"), date!(2025 - 01 - 01)),
        Some(14_000)
    );
    assert_eq!(
        p(Some("重庆"), Some("secondary"), date!(2025 - 03 - 01)),
        Some(12_000)
    );
    assert_eq!(
        p(Some("四川"), Some("tertiary"), date!(2025 - 03 - 01)),
        Some(10_000)
    );
    assert_eq!(p(None, None, date!(2023 - 12 - 31)), None);
    assert_eq!(
        effective_price(&prices, "OTHER", None, None, date!(2025 - 01 - 01)),
        None
    );
}

#[test]
fn prices_parse() {
    let text = "item_code,price_region,institution_grade,price_yuan,valid_from,valid_to
CT-CHEST-PLAIN,重庆,三级,150.00,2024-01-01,2025-01-01
CT-CHEST-PLAIN,,,100,2024-01-01,
";
    let p = parse_prices(text).unwrap();
    assert_eq!(p[0].price_fen, 15_000);
    assert_eq!(p[1].price_region, "*");
    assert_eq!(p[0].institution_grade, "tertiary");
    let bad = "item_code,price_region,institution_grade,price_yuan,valid_from,valid_to
X,,,abc,2024-01-01,
Y,,,1,2024-02-30,
Z,,,1,2024-01-02,2024-01-01
W,,四级,1,2024-01-01,
";
    assert_eq!(parse_prices(bad).unwrap_err().len(), 4);
}

fn rules() -> Vec<StudyRule> {
    parse_rules(
        "priority,institution,modality,body_part,description,procedure_code,item_code
10,,CT,CHEST,,,CT-CHEST-PLAIN
10,,CT,,胸部|chest|肺,,CT-CHEST-PLAIN
20,,CT,,,,CT-OTHER
5,county,CT,,低剂量,,CT-CHEST-LDCT
10,,CT,,,ZY-CT-01,CT-HEAD-PLAIN
",
    )
    .unwrap()
}

fn facts(inst: &str, modality: &str, part: &[&str], desc: Option<&str>) -> StudyFacts {
    StudyFacts {
        institution: inst.into(),
        modalities: vec![modality.into()],
        body_parts: part.iter().map(|p| (*p).to_owned()).collect(),
        description: desc.map(str::to_owned),
        procedure_code: None,
    }
}

#[test]
fn study_rules_pick_the_first_most_specific_match() {
    let rules = rules();
    let item = |f: &StudyFacts| match_study(&rules, f).map(|r| r.item_code.clone());
    assert_eq!(
        item(&facts("city", "CT", &["chest"], None)).as_deref(),
        Some("CT-CHEST-PLAIN")
    );
    assert_eq!(
        item(&facts("city", "CT", &[], Some("胸部平扫"))).as_deref(),
        Some("CT-CHEST-PLAIN")
    );
    assert_eq!(
        item(&facts("city", "CT", &[], Some("CHEST routine"))).as_deref(),
        Some("CT-CHEST-PLAIN")
    );
    // An institution's own rule with a better priority wins over the regional ones.
    assert_eq!(
        item(&facts("county", "CT", &["CHEST"], Some("胸部低剂量"))).as_deref(),
        Some("CT-CHEST-LDCT")
    );
    assert_eq!(
        item(&facts("city", "CT", &["CHEST"], Some("胸部低剂量"))).as_deref(),
        Some("CT-CHEST-PLAIN")
    );
    assert_eq!(
        item(&facts("city", "CT", &["PELVIS"], Some("盆腔"))).as_deref(),
        Some("CT-OTHER")
    );
    assert_eq!(item(&facts("city", "MR", &["CHEST"], None)), None);
    let mut by_code = facts("city", "CT", &["HEAD"], None);
    by_code.procedure_code = Some("ZY-CT-01".into());
    // Same priority as the catch-alls above it: more conditions win.
    assert_eq!(item(&by_code).as_deref(), Some("CT-HEAD-PLAIN"));
}

#[test]
fn mappings_parse() {
    let m = parse_mappings(
        "institution,kind,local_system,local_code,item_code
county,lab,L,GLU,LAB-GLU
city,order,,F00012,CT-CHEST-PLAIN
",
    )
    .unwrap();
    assert_eq!(m[0].kind, MapKind::Lab);
    assert_eq!(m[1].local_system, "");
    assert!(
        parse_mappings("institution,kind,local_system,local_code,item_code\ncounty,charge,,X,Y\n")
            .is_err()
    );
}

#[test]
fn qualifications_and_scopes_parse_with_every_bad_line_named() {
    let q = "record,institution,item,scope,evaluated_by,valid_from,valid_until\n\
             QC-1,town,*,渝HR,市级,2024-06-01,2025-05-31\n\
             EQA-7,county,LAB-K,川渝HR,province,2025-01-01,2025-12-31\n";
    let recs = parse_qualifications(q).unwrap();
    assert_eq!(recs[0].evaluated_by, Evaluator::City);
    assert_eq!(recs[1].item, "LAB-K");
    let bad = "record,institution,item,scope,evaluated_by,valid_from,valid_until\n\
               QC-1,town,*,渝HR,乡级,2024-06-01,2025-05-31\n\
               QC-2,town,*,渝HR,city,2025-06-01,2025-05-31\n";
    let errs = parse_qualifications(bad).unwrap_err();
    assert_eq!(errs.iter().map(|e| e.line).collect::<Vec<_>>(), vec![2, 3]);
    let s = parse_scopes("label,covers\n川渝HR,city:重庆;city:成都\n全国HR,national\n").unwrap();
    assert_eq!(s[0].covers, vec!["city:重庆", "city:成都"]);
    assert!(parse_scopes("label,covers\nX,province:四川\n").is_err());
    // Division codes: bare or prefixed, stored prefixed; an unknown code refuses its line.
    let s = parse_scopes("label,covers\n川渝HR,500000;division:510000\n").unwrap();
    assert_eq!(s[0].covers, vec!["division:500000", "division:510000"]);
    let e = parse_scopes("label,covers\n川渝HR,500000\n坏HR,509999;510000\n").unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].line, 3);
    assert!(e[0].message.contains("509999"), "{}", e[0].message);
    assert!(parse_scopes("label,covers\nX,national\nX,national\n").is_err());
}

#[test]
fn lines_are_counted_alike_with_crlf() {
    let bad = "code,kind,category,name_zh,name_en,modality,body_part,method,loinc,validity_days,hr_scope,equivalent\r\nA,lab,检验,甲,,,,,,30,,\r\nC,x-ray,检验,丙,,,,,,30,,\r\n";
    let errs = parse_items(bad).unwrap_err();
    assert_eq!(errs.iter().map(|e| e.line).collect::<Vec<_>>(), vec![3]);
}
