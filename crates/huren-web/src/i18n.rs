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
    // The clinic portal (issue #20): the patient's authorization, the browser upload.
    (
        "ask_title",
        "请患者授权查看",
        "Ask the patient's authorization",
    ),
    (
        "ask_intro",
        "本机构尚不能查看该身份证号患者的数据。发送短信验证码到患者登记的手机，患者告知验证码后即可查看其外院检查检验结果。",
        "Your institution cannot see this patient's data yet. An SMS code goes to the patient's registered mobile; once the patient reads it out, you can see their results from other institutions.",
    ),
    ("ask_scope", "授权范围", "What the patient opens"),
    ("scope_all", "全部检查检验结果", "All results"),
    ("scope_imaging", "仅影像检查", "Images only"),
    (
        "scope_lab",
        "仅检验结果及报告",
        "Lab results and reports only",
    ),
    ("ask_days", "有效天数（1–30）", "Days (1–30)"),
    ("ask_send", "发送验证码", "Send the code"),
    ("code_sent", "验证码已发送至", "The code was sent to"),
    (
        "code_sent_after",
        "，10分钟内有效。请患者告知验证码。",
        "; it is valid for 10 minutes. Ask the patient to read it out.",
    ),
    ("code_label", "6位验证码", "6-digit code"),
    ("code_confirm", "确认并查看", "Confirm and open"),
    (
        "code_wrong",
        "验证码错误、已过期或已使用（最多尝试5次）。",
        "Wrong, expired or used code (five attempts at most).",
    ),
    (
        "ask_no_patient",
        "该身份证号没有对应的患者记录，或对应多人；请核对号码。",
        "No single patient has this identity number; check it.",
    ),
    (
        "ask_no_phone",
        "该患者未登记手机号，无法短信授权。请患者在就诊过的医院登记手机号。",
        "The patient has no registered mobile number, so no code can be sent. The patient can register one at a hospital they visited.",
    ),
    (
        "ask_too_many",
        "今天对该患者（或由您发出）的授权请求已达上限：每次请求都会给患者发短信。",
        "Today's limit of authorization requests for this patient (or by you) is reached: each one sends the patient an SMS.",
    ),
    ("ask_invalid", "请求无效：", "Not a valid request: "),
    (
        "ask_not_doctor",
        "只有医生可以请求患者授权。",
        "Only doctors ask for a patient's authorization.",
    ),
    ("upload_title", "上传影像", "Upload images"),
    (
        "upload_intro",
        "没有PACS的机构可在此上传本机构设备拍摄的DICOM影像：选择文件夹、DICOM文件或zip压缩包。",
        "An institution without a PACS uploads the DICOM images of its own modalities here: a folder, DICOM files or a zip.",
    ),
    ("upload_open", "上传影像", "Upload images"),
    (
        "upload_files",
        "选择文件（DICOM或zip）",
        "Choose files (DICOM or zip)",
    ),
    ("upload_folder", "选择文件夹", "Choose a folder"),
    ("upload_start", "开始上传", "Upload"),
    ("upload_file", "文件", "File"),
    ("upload_result", "结果", "Result"),
    (
        "upload_no_role",
        "只有技师和医生可以上传影像。",
        "Only technicians and doctors upload images.",
    ),
    (
        "upload_needs_js",
        "上传需要启用浏览器脚本。",
        "Uploading needs scripts enabled in the browser.",
    ),
    ("up_stored", "已保存", "Stored"),
    (
        "up_stored_warning",
        "已保存（部分属性已修正）",
        "Stored (some attributes corrected)",
    ),
    ("up_refused", "拒收", "Refused"),
    ("up_skipped", "跳过", "Skipped"),
    ("up_summary_stored", "已保存", "stored"),
    ("up_summary_refused", "拒收", "refused"),
    (
        "up_dicomdir",
        "目录文件（DICOMDIR），不是影像",
        "A directory file (DICOMDIR), not an image",
    ),
    (
        "up_zip_bad",
        "无法读取的zip压缩包（仅支持标准zip，不支持加密或zip64）",
        "A zip that cannot be read (plain zip only: no encryption, no zip64)",
    ),
    (
        "up_reason_c000",
        "无法识别：不是DICOM文件，或文件已损坏",
        "Not understood: not a DICOM file, or damaged",
    ),
    (
        "up_reason_a900",
        "数据与其SOP类不符",
        "The data set does not match its SOP class",
    ),
    (
        "up_reason_a700",
        "文件过大，或服务器存储空间不足",
        "Too large, or the archive is out of space",
    ),
    (
        "up_reason_0124",
        "文件中的患者号属于其他机构的编号，本机构不能以该编号上传",
        "The patient ID is in another institution's numbering; your institution may not send under it",
    ),
    (
        "up_reason_0110",
        "服务器处理失败，请稍后重试",
        "The archive failed to process it; try again later",
    ),
    (
        "up_reason_c409",
        "不属于所指定的检查",
        "Not of the study named",
    ),
    ("up_reason_other", "拒收，原因代码", "Refused, reason code"),
    (
        "up_network",
        "网络错误，未上传",
        "Network error: not uploaded",
    ),
    // The data steward's pages (issue #20).
    ("steward_title", "身份核对队列", "Identity review queue"),
    (
        "steward_intro",
        "链接规则无法自动判断的病历对：并排比对后合并为同一人，或确认不是同一人。每次决定都需填写理由，并记入审计。",
        "Pairs of records the link rules could not decide: compare them side by side, then link them as one person or record that they are two. Every decision needs a reason and is audited.",
    ),
    ("steward_open", "身份核对", "Identity review"),
    (
        "steward_open_intro",
        "待核对的病历对、人员合并与拆分。",
        "Pairs to review, merging and unmerging persons.",
    ),
    ("review_open", "待核对", "Open"),
    ("review_linked", "已合并", "Linked"),
    ("review_rejected", "非同一人", "Two people"),
    ("review_none", "没有此类病历对。", "No pairs here."),
    ("review_score", "匹配分", "Score"),
    ("review_record", "机构病历号", "Record"),
    ("name", "姓名", "Name"),
    (
        "review_national_id_inconsistent",
        "身份证号与出生日期或性别不符",
        "The identity number disagrees with the birth date or sex",
    ),
    (
        "review_possible_match",
        "可能是同一人",
        "Possibly the same person",
    ),
    (
        "review_conflicting_numbers",
        "身份证号相互冲突",
        "Conflicting identity numbers",
    ),
    ("review_other", "需要人工核对", "Needs a person to decide"),
    ("agree_same", "一致", "same"),
    (
        "agree_near",
        "相近（疑似录入错误）",
        "near (a typing slip?)",
    ),
    ("agree_differs", "不同", "differs"),
    ("agree_unknown", "缺失", "missing"),
    ("steward_person", "人员", "Person"),
    ("steward_reason", "理由", "Reason"),
    ("review_link", "合并为同一人", "Link: the same person"),
    ("review_reject", "不是同一人", "Two people"),
    (
        "review_done_link",
        "已合并为同一人。",
        "Linked as one person.",
    ),
    (
        "review_done_reject",
        "已记录为不是同一人。",
        "Recorded as two people.",
    ),
    (
        "steward_only",
        "只有数据管理员可以使用身份核对。",
        "Identity review is for data stewards.",
    ),
    (
        "steward_no_person",
        "没有该人员，或不在您机构的管理范围内。",
        "No such person, or not one your institution's records belong to.",
    ),
    (
        "steward_reason_needed",
        "请填写理由（1–500字）。",
        "Give a reason (1–500 characters).",
    ),
    (
        "steward_not_yours",
        "该人员的病历不属于您的机构。",
        "None of these records is your institution's.",
    ),
    (
        "steward_refused",
        "未能执行：请求无效或已被处理。",
        "Not done: the request is not valid or was already decided.",
    ),
    ("steward_done_merge", "已合并。", "Merged."),
    (
        "steward_done_unmerge",
        "已拆分，病历已回到原人员。",
        "Unmerged: the records are back with their person.",
    ),
    (
        "steward_merged_into",
        "该人员已并入",
        "This person was merged into",
    ),
    (
        "steward_no_records",
        "该人员目前没有病历。",
        "This person has no records now.",
    ),
    ("steward_history", "链接历史", "Link history"),
    ("steward_rule", "依据", "Rule"),
    ("steward_from", "原人员", "From"),
    ("steward_to", "现人员", "To"),
    (
        "steward_merge",
        "并入另一人员",
        "Merge another person into this one",
    ),
    (
        "steward_merge_intro",
        "把另一人员的全部病历移入本人员（可撤销）。",
        "Moves every record of another person into this one (can be undone).",
    ),
    (
        "steward_merged_person",
        "被并入人员的编号",
        "The id of the person to merge in",
    ),
    ("steward_unmerge", "撤销合并", "Undo the merge"),
    (
        "steward_unmerge_intro",
        "把合并时移走的病历移回本人员。",
        "Moves the records the merge took back to this person.",
    ),
    // The auditor's pages (issue #20).
    ("audit_title", "审计日志", "Audit trail"),
    (
        "audit_open_intro",
        "按人员、患者、机构、事件和日期查询审计日志；完整性校验与导出。",
        "The audit trail by who acted, patient, institution, event and date; integrity checks and exports.",
    ),
    (
        "audit_only",
        "只有审计员可以查看审计日志。",
        "The audit trail is for auditors.",
    ),
    ("audit_chain", "防篡改链", "Tamper-evident chain"),
    (
        "audit_last_checkpoint",
        "最近签名检查点",
        "Last signed checkpoint",
    ),
    (
        "audit_no_checkpoint",
        "尚无签名检查点（未配置检查点文件，或尚未写入）。",
        "No signed checkpoint yet (no checkpoint file configured, or none written yet).",
    ),
    ("audit_verify", "立即校验", "Verify now"),
    (
        "audit_not_chained",
        "未配置链密钥：审计事件未加链，无法校验。",
        "No chain key is configured: events are not chained and cannot be verified.",
    ),
    (
        "audit_intact",
        "审计日志完整。",
        "The audit trail is intact.",
    ),
    (
        "audit_broken",
        "发现问题：审计日志可能被修改或删除。",
        "Problems found: the audit trail may have been changed or cut.",
    ),
    ("audit_from", "起始日期", "From"),
    ("audit_until", "截止日期（含）", "Until (inclusive)"),
    ("audit_actor", "操作人", "Who acted"),
    ("audit_patient", "患者", "Patient"),
    ("audit_event", "事件", "Event"),
    ("audit_time", "时间", "Time"),
    ("audit_outcome", "结果", "Outcome"),
    ("audit_object", "对象", "Object"),
    ("audit_detail", "详情", "Detail"),
    ("audit_export", "导出当前筛选", "Export this filter"),
    (
        "audit_fhir_note",
        "（FHIR导出按日期、患者、机构和操作人筛选，不按事件）",
        "(the FHIR export filters by date, patient, institution and who acted, not by event)",
    ),
    ("audit_none", "没有符合条件的事件。", "No events match."),
    ("audit_older", "更早的事件", "Older events"),
    (
        "audit_bad_date",
        "日期格式应为 YYYY-MM-DD。",
        "Dates are written YYYY-MM-DD.",
    ),
    // The QC centre's pages (issue #20).
    ("qc_title", "影像质控", "Image quality control"),
    (
        "qc_open_intro",
        "各机构、设备类型和月份的质控分布与趋势，最低分检查及各评分项。",
        "Quality distributions and trends by institution, modality and month; the lowest studies and every scorer.",
    ),
    (
        "qc_intro",
        "按检查日期统计（无检查日期时按到达日期）。不含患者信息：检查以实例UID和机构标识。",
        "By study date (or arrival when a study has none). No patient data: studies are named by UID and institution.",
    ),
    (
        "qc_only",
        "只有质控人员、技师、机构管理员和运营人员可以查看影像质控。",
        "Image quality is for QC officers, technicians, institution admins and operators.",
    ),
    (
        "qc_bad_period",
        "日期格式应为 YYYY-MM-DD，且截止日期不早于起始日期。",
        "Dates are written YYYY-MM-DD, and until is not before from.",
    ),
    ("qc_by", "分组", "Group by"),
    ("qc_modality", "设备类型", "Modality"),
    ("qc_month", "月份", "Month"),
    ("qc_chart", "各组质控等级分布", "Grades by group"),
    ("qc_studies", "检查数", "Studies"),
    ("qc_reject", "废片", "Reject"),
    ("qc_incomplete_n", "序列不完整", "Incomplete series"),
    ("qc_median", "中位分", "Median"),
    (
        "qc_none",
        "该期间没有已评级的检查。",
        "No graded studies in this period.",
    ),
    ("qc_lowest", "最低分检查", "Lowest-scoring studies"),
    ("qc_score", "分数", "Score"),
    ("qc_grade_col", "等级", "Grade"),
    ("qc_reasons", "原因", "Reasons"),
    ("qc_study", "检查", "Study"),
    ("qc_open_study", "查看评分", "Open"),
    (
        "qc_no_study",
        "没有该检查的质控记录，或不在您的范围内。",
        "No quality record of that study, or not one you may see.",
    ),
    ("qc_series", "序列", "Series"),
    ("qc_complete", "序列完整", "complete"),
    ("qc_incomplete", "序列不完整", "incomplete"),
    ("qc_scorer", "评分项", "Scorer"),
    ("qc_value", "测量值", "Measured"),
    ("qc_bands", "分级标准", "Bands"),
    ("qc_images", "逐幅图像", "Images"),
    ("qc_status", "状态", "Status"),
    ("qc_values", "各评分项", "Scorers"),
    ("qc_reviews", "质控中心复核意见", "The QC centre's review"),
    ("qc_not_reviewed", "尚未复核。", "Not reviewed yet."),
    (
        "qc_review_comment",
        "复核意见（发给该机构）",
        "Comment to the hospital",
    ),
    ("qc_review_submit", "标记为已复核", "Mark reviewed"),
    (
        "qc_review_done",
        "已记录复核意见，该机构可在本页看到。",
        "The review is recorded; the hospital sees it on this page.",
    ),
    (
        "qc_review_needed",
        "请填写复核意见（1–1000字）。",
        "Write a comment (1–1000 characters).",
    ),
    (
        "qc_review_only",
        "只有质控中心人员可以复核。",
        "Reviews are the QC centre officers'.",
    ),
    // The operators' recognition statistics (issue #20).
    ("stats_title", "互认统计", "Recognition statistics"),
    (
        "stats_open_intro",
        "互认率、复查原因、提醒覆盖与忽略、节约费用：按机构、科室、项目和月份。",
        "Recognition rate, re-examinations by reason, reminder coverage and ignoring, savings: by institution, department, item and month.",
    ),
    (
        "stats_only",
        "只有运营人员和机构管理员可以查看互认统计。",
        "Statistics are for operators and institution admins.",
    ),
    (
        "stats_rate_eligible",
        "互认率按本区域口径：符合互认条件的结果中被互认的比例。",
        "The rate by this region's definition: of the results that met every condition, those recognized.",
    ),
    (
        "stats_rate_overall",
        "互认率按本区域口径：所有目录内结果中被互认的比例。",
        "The rate by this region's definition: of all catalogued results, those recognized.",
    ),
    ("stats_department", "科室", "Department"),
    ("stats_item", "项目", "Item"),
    ("stats_rate", "互认率", "Recognition rate"),
    ("stats_eligible_rate", "符合条件互认率", "Eligible rate"),
    ("stats_units", "统计单元", "Units"),
    ("stats_recognized", "互认", "Recognized"),
    ("stats_reexamined", "复查", "Re-examined"),
    ("stats_not_counted", "不计入", "Not counted"),
    ("stats_coverage", "提醒覆盖率", "Reminder coverage"),
    ("stats_ignore_rate", "提醒忽略率", "Reminders ignored"),
    ("stats_savings", "节约费用", "Savings"),
    ("stats_unpriced", "无价格", "Unpriced"),
    ("stats_uncatalogued", "目录外", "Outside the catalog"),
    (
        "stats_none",
        "该期间没有互认决定或提醒。",
        "No decisions or reminders in this period.",
    ),
    ("stats_reasons", "复查原因", "Re-examinations by reason"),
    (
        "why_none",
        "该结果已不在时间线上（可能已被更正）；请刷新页面。",
        "That result is no longer on the timeline (it may have been corrected); reload the page.",
    ),
    ("qc_reviewed", "已复核", "reviewed"),
    (
        "qc_image_alt",
        "本序列评分最低的图像",
        "the series' lowest-scored image",
    ),
    (
        "qc_image_caption",
        "评分最低的图像（仅像素，不含患者身份信息）",
        "Lowest-scored image (pixels only, no patient identity)",
    ),
    ("film_title", "我的云胶片", "My cloud film"),
    ("film_me", "本人", "You"),
    (
        "film_intro",
        "输入本人身份证号，验证码将发送到您就诊医院登记的手机号。",
        "Enter your identity card number; a code goes to the mobile number your hospital registered.",
    ),
    ("film_identity", "身份证号", "Identity card number"),
    ("film_send_code", "发送验证码", "Send the code"),
    (
        "film_code_sent",
        "如该身份证号已登记手机号，验证码已发送至该手机，10分钟内有效。",
        "If this number has a registered mobile number, a code has been sent to it; it is good for 10 minutes.",
    ),
    ("film_sign_in", "登录", "Sign in"),
    ("film_again", "重新输入身份证号", "Enter the number again"),
    (
        "film_bad_identity",
        "身份证号格式不正确，请核对。",
        "That is not a valid identity card number; please check it.",
    ),
    (
        "film_too_many",
        "今天发送的验证码太多，请明天再试。",
        "Too many codes today; please try again tomorrow.",
    ),
    (
        "film_wrong_code",
        "验证码错误、已过期或已使用（最多尝试5次）。",
        "Wrong, expired or used code (five attempts at most).",
    ),
    ("film_images", "影像", "Images"),
    ("film_reports", "报告", "Reports"),
    ("film_labs", "检验结果", "Lab results"),
    ("film_shares", "我的分享", "My shares"),
    ("film_authorizations", "我的授权", "My authorizations"),
    ("film_access", "谁查看了我的资料", "Who read my data"),
    ("film_none", "暂无", "Nothing yet"),
    ("film_image_count", "幅图像", "images"),
    ("film_view", "查看影像", "View images"),
    (
        "film_viewer",
        "在阅片器中打开（电脑）",
        "Open in the viewer (computer)",
    ),
    ("film_share", "分享", "Share"),
    ("film_share_for", "有效期", "Valid for"),
    ("film_share_make", "生成分享链接", "Make a link"),
    ("days", "天", "days"),
    ("film_date", "日期", "Date"),
    ("film_item", "项目", "Test"),
    ("film_value", "结果", "Result"),
    ("film_range", "参考范围", "Reference range"),
    ("film_institution", "医疗机构", "Institution"),
    (
        "film_no_shares",
        "您还没有分享过检查。",
        "You have not shared a study.",
    ),
    ("film_until", "有效至", "valid until"),
    ("film_uses", "打开次数", "opened"),
    ("film_live", "有效", "active"),
    ("film_ended", "已结束", "ended"),
    ("film_expired", "已过期", "expired"),
    ("film_end_share", "结束分享", "End the share"),
    (
        "film_no_authorizations",
        "您没有授权过其他机构查看您的结果。",
        "You have not authorized any institution to read your results.",
    ),
    (
        "film_end_authorization",
        "撤销授权",
        "End the authorization",
    ),
    (
        "film_shared_note",
        "此检查由患者本人分享，链接有效至",
        "Shared by the patient; this link is valid until",
    ),
    (
        "film_no_images",
        "此检查没有可显示的图像。",
        "This study has no image to show.",
    ),
    ("film_prev", "上一幅", "Previous image"),
    ("film_next", "下一幅", "Next image"),
    ("film_slice", "图像序号", "Image number"),
    ("film_report", "报告", "Report"),
    ("film_share_made", "分享链接已生成", "Share link made"),
    (
        "film_share_once",
        "请复制下面的链接发给您信任的人（链接只显示这一次）：",
        "Copy the link below and send it to someone you trust (it is shown only this once):",
    ),
    (
        "film_share_audited",
        "每次打开都会记录，您可随时结束分享。",
        "Every opening is recorded; you can end the share at any time.",
    ),
    (
        "film_not_yours",
        "该检查不属于您。",
        "That study is not yours.",
    ),
    (
        "film_share_days",
        "分享有效期为1–30天。",
        "A share lasts 1–30 days.",
    ),
    (
        "film_access_intro",
        "以下是查看或使用您资料的记录：时间、机构、身份和目的。",
        "Each reading or use of your data: when, which institution, in what role, and why.",
    ),
    ("film_when", "时间", "When"),
    ("film_role", "身份", "Role"),
    ("film_what", "操作", "What"),
    ("film_purpose", "目的", "Purpose"),
    ("film_refused", "被拒绝", "refused"),
    ("role_doctor", "医生", "doctor"),
    ("role_technician", "技师", "technician"),
    ("role_qc_officer", "质控人员", "QC officer"),
    ("role_data_steward", "数据管理员", "data steward"),
    ("role_institution_admin", "机构管理员", "institution admin"),
    ("film_role_system", "医院信息系统", "hospital system"),
    ("film_role_patient", "本人", "you"),
    ("film_role_share", "分享链接", "your share link"),
    ("film_role_platform", "平台", "the platform"),
    ("film_act_read", "查看", "read"),
    ("film_act_decided", "互认判定", "recognition decision"),
    ("film_act_authorization", "授权", "authorization"),
    ("film_act_emergency", "紧急调阅", "emergency access"),
    ("film_act_shared", "分享", "share"),
    ("film_purpose_treatment", "诊疗", "treatment"),
    ("film_purpose_emergency", "急救", "emergency"),
    ("film_purpose_operations", "医院业务", "hospital operations"),
    ("film_purpose_patient", "本人查看", "your own request"),
    ("film_purpose_shared", "患者分享", "shared by you"),
    ("film_purpose_none", "—", "—"),
    (
        "film_link_gone_title",
        "链接已失效",
        "The link no longer works",
    ),
    (
        "film_link_gone",
        "该分享链接不存在、已过期或已被患者结束。",
        "This share link does not exist, has expired, or was ended by the patient.",
    ),
    ("config_title", "配置管理", "Configuration"),
    (
        "config_open_intro",
        "互认目录、价格、编码对照、资质、范围与政策的版本历史，机构与设备，以及导入新版本。",
        "The catalog, prices, code mappings, qualifications, scopes and policy with their history, the institutions and devices, and importing a new version.",
    ),
    (
        "config_intro",
        "每次导入都是一个新版本，按生效日期生效，旧版本保留可查；文件中任何一行有误则不作任何更改。",
        "Each import is a new version, in force from its date; earlier versions stay readable. A file with any bad line changes nothing.",
    ),
    (
        "config_only_operators",
        "只有区域运营人员可以管理配置。",
        "Only the region's operators manage the configuration.",
    ),
    ("config_import", "导入", "Import"),
    ("config_kind", "类型", "Kind"),
    (
        "config_kind_catalog",
        "互认项目目录（新版本）",
        "Catalog (a new version)",
    ),
    ("config_kind_prices", "价格", "Prices"),
    ("config_kind_mappings", "编码对照", "Code mappings"),
    (
        "config_kind_study_rules",
        "影像检查映射规则",
        "Study mapping rules",
    ),
    (
        "config_kind_qualifications",
        "机构资质记录",
        "Qualification records",
    ),
    ("config_kind_scopes", "互认范围", "Recognition scopes"),
    (
        "config_kind_policy",
        "互认政策（TOML）",
        "Recognition policy (TOML)",
    ),
    ("config_label", "版本名", "Version label"),
    ("config_effective_from", "生效日期", "In force from"),
    ("config_file", "选择文件", "Choose a file"),
    (
        "config_text",
        "文件内容（CSV或TOML，可直接粘贴）",
        "The file's text (CSV or TOML; pasting works too)",
    ),
    ("config_import_button", "校验并导入", "Check and import"),
    ("config_done", "已导入", "Imported"),
    (
        "config_nothing_changed",
        "未作任何更改。",
        "Nothing was changed.",
    ),
    (
        "config_bad_lines",
        "文件中有错误的行：",
        "The file has bad lines:",
    ),
    ("config_line", "行号", "Line"),
    ("config_problem", "问题", "Problem"),
    (
        "config_bad_date",
        "生效日期的格式为YYYY-MM-DD。",
        "The first day is YYYY-MM-DD.",
    ),
    (
        "config_bad_kind",
        "未知的导入类型。",
        "Unknown kind of import.",
    ),
    ("config_items", "项", "items"),
    ("config_rows", "行", "rows"),
    ("config_catalog_versions", "目录版本", "Catalog versions"),
    (
        "config_sets",
        "资质、范围与政策的版本",
        "Qualification, scope and policy versions",
    ),
    ("config_imported", "导入时间", "Imported"),
    ("config_by", "导入人", "By"),
    ("config_in_force", "现行", "in force"),
    ("config_institutions", "医疗机构", "Institutions"),
    ("config_as_of", "截至", "as of"),
    ("config_code", "机构代码", "Code"),
    ("config_level", "等级", "Level"),
    ("config_region", "互认区域", "Region"),
    ("config_city", "城市", "City"),
    ("config_peers", "DICOM设备（AE）", "DICOM peers (AEs)"),
    ("config_network", "网络", "Network"),
    ("config_port", "端口", "Port"),
    ("config_in_force_title", "现行配置", "In force"),
    (
        "config_in_force_intro",
        "查看各类配置的现行内容，或下载为CSV修改后重新导入。",
        "Read what is in force of each kind, or download it as CSV to change and import again.",
    ),
    (
        "config_nothing_imported",
        "尚未导入此类配置。",
        "Nothing of this kind has been imported.",
    ),
    ("config_download", "下载", "Download"),
    (
        "config_download_hint",
        "与导入格式相同，可修改后重新导入。",
        "In the import format: change it and import it again.",
    ),
    ("config_tokens", "系统令牌", "System tokens"),
    ("config_token_reads", "读取范围", "Reads"),
    ("config_token_expires", "到期", "Expires"),
    ("config_token_revoked", "已吊销", "revoked"),
    (
        "config_tokens_hint",
        "令牌的密文只在创建时显示一次，这里不显示；创建和吊销用命令行或管理接口。",
        "A token's secret is shown once, when it is made, never here; tokens are made and revoked with the CLI or the admin API.",
    ),
    (
        "stats_largest",
        "表中为单位数最多的组，完整数据见CSV：",
        "The table shows the largest groups by units; the CSV has them all:",
    ),
    ("config_show", "查看", "Show"),
    (
        "config_institution_history",
        "机构属性的各个版本",
        "Every version of the institution's attributes",
    ),
    (
        "config_institution_history_intro",
        "每个属性按生效日期记录；互认判定按结果日期时机构的属性进行。修改用 huren institution set --valid-from。",
        "Each attribute is kept by the day it took effect; recognition judges a result by the institution as it was on the result's day. Changes: huren institution set --valid-from.",
    ),
    ("config_attribute", "属性", "Attribute"),
    ("config_value", "值", "Value"),
    ("config_until", "截止", "Until"),
    (
        "config_kind_institutions",
        "医疗机构（按生效日期）",
        "Institutions (as of a day)",
    ),
    ("config_added", "家新增", "added"),
    ("config_changed", "家变更", "changed"),
    ("config_kind_aes", "DICOM设备（AE）", "DICOM peers (AEs)"),
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
                    || matches!(
                        *k,
                        "switch_lang" | "grade_A" | "grade_B" | "grade_C" | "film_purpose_none"
                    ),
                "{k}'s Chinese has no Chinese characters: {zh}"
            );
        }
    }

    /// Every key named in the templates (`t.t("…")`) and the handlers (`k("…")`) is in the
    /// table.
    #[test]
    fn templates_use_only_known_keys() {
        // Where cargo runs the test (a binary reused from a shared target directory may have
        // been compiled in another clone).
        let dir = std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
        let root = std::path::Path::new(&dir);
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
