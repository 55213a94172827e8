//! The pages' words: one table keyed by message id, Chinese (zh-CN, the default) and English.
//! A page asks `t.t("key")`; a test fails when a key lacks either language or a template uses a
//! key the table does not have.

use axum::http::HeaderMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Zh,
    En,
}

pub const LANG_COOKIE: &str = "lang";

impl Lang {
    /// From the `lang` cookie; Chinese unless it says `en`.
    pub fn from_headers(h: &HeaderMap) -> Lang {
        let en = h
            .get_all(axum::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .any(|(k, v)| k == LANG_COOKIE && v.trim() == "en");
        if en { Lang::En } else { Lang::Zh }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }
}

/// The translator a template holds.
#[derive(Debug, Clone, Copy)]
pub struct T {
    pub lang: Lang,
}

impl T {
    pub fn t(&self, key: &str) -> &'static str {
        match MESSAGES.iter().find(|(k, _, _)| *k == key) {
            Some((_, zh, en)) => match self.lang {
                Lang::Zh => zh,
                Lang::En => en,
            },
            // Never shown in a built page: the table test covers every key the templates use.
            None => "?",
        }
    }

    /// One of two texts the use cases already give in both languages.
    pub fn pick<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        match self.lang {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    pub fn zh(&self) -> bool {
        self.lang == Lang::Zh
    }
}

/// (key, zh-CN, en).
pub const MESSAGES: &[(&str, &str, &str)] = &[
    ("brand", "huren 互认", "huren mutual recognition"),
    (
        "brand_sub",
        "区域检查检验结果互认平台",
        "regional result-sharing platform",
    ),
    ("switch_lang", "English", "中文"),
    ("sign_in", "登录", "Sign in"),
    ("sign_out", "退出", "Sign out"),
    ("username", "用户名", "Username"),
    ("password", "密码", "Password"),
    (
        "sign_in_oidc",
        "使用统一身份认证登录",
        "Sign in with the region's identity provider",
    ),
    ("sign_in_title", "医生登录", "Doctor sign-in"),
    (
        "sign_in_hint",
        "从医院信息系统（HIS）打开患者时无需登录。",
        "Opening a patient from the hospital information system (HIS) needs no sign-in.",
    ),
    (
        "wrong_password",
        "用户名或密码错误。",
        "Wrong username or password.",
    ),
    (
        "locked",
        "账户已暂时锁定，请稍后再试。",
        "The account is locked for a while; try again later.",
    ),
    (
        "session_ended",
        "会话已结束，请重新登录。",
        "Your session has ended; please sign in again.",
    ),
    ("signed_out", "您已退出。", "You have signed out."),
    (
        "launch_invalid",
        "该链接无效、已使用或已过期。请从医院信息系统重新打开患者。",
        "This link is unknown, used or expired. Open the patient again from the HIS.",
    ),
    ("find_patient", "查找患者", "Find a patient"),
    ("identity_number", "身份证号", "Resident identity number"),
    (
        "record_number",
        "本院病历号（登记号）",
        "This hospital's record number",
    ),
    ("search", "查找", "Search"),
    (
        "no_patient_found",
        "未找到您可查看的患者。没有诊疗关系（就诊、患者授权）时不能查看患者数据。",
        "No patient found that you may see. Without a care relationship (a visit, the patient's authorization) a patient's data cannot be opened.",
    ),
    ("start_title", "工作台", "Workstation"),
    (
        "start_intro",
        "从医院信息系统打开患者，或按证件号查找您有诊疗关系的患者。",
        "Open a patient from the HIS, or find a patient you have a care relationship with by number.",
    ),
    ("patient", "患者", "Patient"),
    ("sex", "性别", "Sex"),
    ("birth_date", "出生日期", "Date of birth"),
    ("records", "各机构病历号", "Records at institutions"),
    (
        "reminder_encounter",
        "该患者有可互认的外院检查检验结果",
        "This patient has recognizable results from other institutions",
    ),
    (
        "reminder_order",
        "您开立的项目有可互认的结果",
        "The item you are ordering has a recognizable result",
    ),
    ("reminder_count", "项可互认", "recognizable"),
    (
        "reminder_see",
        "请在下方时间轴中查看并作出互认决定。",
        "See them on the timeline below and decide.",
    ),
    ("timeline", "检查检验时间轴", "Results timeline"),
    (
        "timeline_empty",
        "该患者暂无检查检验结果。",
        "No results for this patient yet.",
    ),
    ("institution", "机构", "Institution"),
    ("date", "日期", "Date"),
    ("item", "项目", "Item"),
    ("verdict", "互认结论", "Recognition"),
    ("valid_through", "有效期至", "Valid through"),
    ("qc_grade", "质控等级", "QC grade"),
    ("explain", "依据", "Why"),
    ("kind_imaging", "影像检查", "Imaging"),
    ("kind_lab", "检验", "Lab"),
    ("own_institution", "本院", "this hospital"),
    ("open_images", "打开影像", "Open images"),
    ("report", "报告", "Report"),
    ("show_report", "查看报告", "Read the report"),
    ("no_report", "暂无报告", "No report yet"),
    ("lab_results", "检验结果", "Lab results"),
    ("analyte", "检验项目", "Test"),
    ("value", "结果", "Value"),
    ("unit", "单位", "Unit"),
    ("reference_range", "参考范围", "Reference range"),
    ("flag", "提示", "Flag"),
    ("trend", "趋势", "Trend"),
    ("trends", "检验趋势（跨机构）", "Trends across institutions"),
    (
        "charts_missing",
        "未安装图表组件（ECharts），趋势以表格显示。",
        "The chart library (ECharts) is not installed; trends are shown as tables.",
    ),
    (
        "viewer_missing",
        "本服务器未安装影像浏览器（OHIF）。请运行 scripts/web-assets.sh 后重新构建。",
        "The image viewer (OHIF) is not installed on this server. Run scripts/web-assets.sh and rebuild.",
    ),
    ("decide", "互认决定", "Decision"),
    ("recognize", "互认（不重复检查）", "Recognize (no repeat)"),
    ("re_examine", "重新检查", "Re-examine"),
    ("reason", "原因", "Reason"),
    ("note", "说明", "Note"),
    (
        "note_hint",
        "选择“其他”时必填，最多200字",
        "Required for “other”; at most 200 characters",
    ),
    ("submit_decision", "记录决定", "Record the decision"),
    ("decided", "已记录", "Recorded"),
    ("record_sentence", "病历记录", "For the medical record"),
    ("copy", "复制", "Copy"),
    ("copied", "已复制", "Copied"),
    ("decision_failed", "未能记录：", "Not recorded: "),
    (
        "not_counted",
        "（该原因不计入互认统计）",
        "(this reason is not counted in the recognition statistics)",
    ),
    (
        "no_relationship_title",
        "不能查看该患者",
        "You cannot open this patient",
    ),
    (
        "no_relationship",
        "您与该患者没有诊疗关系（本院就诊、患者授权或紧急调阅），因此看不到其任何数据。本次访问已记入审计。",
        "You have no care relationship with this patient (a visit here, the patient's authorization or break-glass), so none of their data is shown. This attempt is in the audit trail.",
    ),
    ("order_title", "开单提醒", "Order-time reminder"),
    (
        "order_none",
        "该项目暂无可互认的外院结果。",
        "No recognizable result from another institution for this item.",
    ),
    (
        "order_unknown",
        "本院尚无该患者的登记。",
        "This hospital has no record of this patient yet.",
    ),
    (
        "order_not_in_reach",
        "您与该患者没有诊疗关系。",
        "You have no care relationship with this patient.",
    ),
    ("back", "返回", "Back"),
    ("grade_A", "甲", "A"),
    ("grade_B", "乙", "B"),
    ("grade_C", "丙", "C"),
    ("grade_reject", "废片", "reject"),
    ("qc_uncalibrated", "未校准", "uncalibrated"),
    ("qc_not_assessable", "不可评估", "not assessable"),
    ("qc_absent", "未评", "not graded"),
    ("own_result", "本院结果", "this hospital's result"),
    ("viewer_title", "影像浏览", "Image viewer"),
    ("close_viewer", "关闭（Esc）", "Close (Esc)"),
    ("verdict_recognizable", "可互认", "recognizable"),
    ("verdict_reference_only", "仅供参考", "reference only"),
    ("verdict_not_recognizable", "不予互认", "not recognizable"),
    ("sex_M", "男", "male"),
    ("sex_F", "女", "female"),
    ("sex_O", "其他", "other"),
    ("sex_U", "未知", "unknown"),
    ("expires_at", "会话有效至", "Session valid until"),
    ("error_title", "出错了", "Something went wrong"),
    (
        "forbidden_csrf",
        "页面已过期，请刷新后重试。",
        "The page is out of date; reload it and try again.",
    ),
    ("skip_to_content", "跳到正文", "Skip to content"),
    ("consulted", "核对记录", "Records consulted"),
    ("images_count", "幅图像", "images"),
    ("modality", "设备", "Modality"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_both_languages_once() {
        let mut seen = std::collections::HashSet::new();
        for (k, zh, en) in MESSAGES {
            assert!(seen.insert(*k), "key {k} twice");
            assert!(!zh.trim().is_empty(), "{k} has no Chinese");
            assert!(!en.trim().is_empty(), "{k} has no English");
            assert!(
                zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
                    || matches!(*k, "switch_lang" | "grade_A" | "grade_B" | "grade_C"),
                "{k}'s Chinese has no Chinese characters: {zh}"
            );
        }
    }

    /// Every key named in the templates (`t.t("…")`) and the handlers (`k("…")`) is in the
    /// table.
    #[test]
    fn templates_use_only_known_keys() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut used = 0;
        let mut files = Vec::new();
        for dir in ["templates", "src"] {
            for entry in std::fs::read_dir(root.join(dir)).expect("dir") {
                files.push(entry.expect("entry").path());
            }
        }
        for path in files {
            if path.ends_with("i18n.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("template");
            for (at, _) in text.match_indices("(\"") {
                let before = &text[..at];
                let named = before.ends_with(".t")
                    || (before.ends_with('k')
                        && !before[..before.len() - 1]
                            .ends_with(|c: char| c.is_alphanumeric() || c == '_'));
                if !named {
                    continue;
                }
                let key = text[at + 2..].split('"').next().unwrap_or("");
                used += 1;
                assert!(
                    MESSAGES.iter().any(|(k, _, _)| *k == key),
                    "{} uses unknown key {key:?}",
                    path.display()
                );
            }
        }
        assert!(used > 40, "the templates were not read ({used} keys)");
    }
}
