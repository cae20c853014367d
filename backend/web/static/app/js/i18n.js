// Every word the app shows, in English and Simplified Chinese. The participant's language comes from /api/v1/me
// and can be changed in Settings; until the app knows it, the phone's own language decides.

const CATALOGUE = {
  en: {
    app_title: "Trial Companion",
    nav_label: "Screens",
    nav_today: "Today",
    nav_calendar: "Calendar",
    nav_vas: "How active",
    nav_ae: "Side effect",
    nav_messages: "Messages",
    nav_settings: "Settings",
    offline_banner: "No connection. What you report is kept on this phone and sent later.",
    pending_count: "{n} report(s) waiting to send",
    waiting_to_send: "Waiting to send",
    sent: "Sent",
    loading: "Loading…",
    // activation
    activate_title: "Connect this phone",
    activate_intro: "Type the code your study nurse gave you, or scan the QR code on the nurse's screen with your phone camera.",
    activate_code: "Activation code",
    activate_code_hint: "12 letters and digits, e.g. 7KQ2-M9XD-4TBA",
    activate_button: "Connect",
    activate_offline: "Connecting needs an internet connection. Try again when you are online.",
    activate_failed: "That code did not work: {reason}",
    revoked: "This phone has been signed out. Ask your nurse for a new code.",
    signed_out: "You are signed out.",
    // today
    today_title: "Today",
    today_no_doses: "You have no injections in your study schedule.",
    today_open: "Injection {seq} — {date}",
    today_window: "Report it between {opens} and {closes}.",
    today_next: "Your next injection is on {date} (reminder at {time}).",
    today_none_left: "There are no more injections in your schedule.",
    today_done_taken: "Recorded: injected at {time}.",
    today_done_site: "Site: {site}.",
    today_done_not_taken: "Recorded: not injected.",
    today_site_legend: "Where did you inject?",
    today_site_suggested: "Suggested today: {site} (used least recently).",
    today_site_last: "last used {date}",
    today_site_never: "not used yet",
    body_map_label: "Body map of the six injection sites",
    body_map_note: "Left and right are your own left and right.",
    i_injected: "I injected",
    i_could_not: "I could not inject",
    report_saved_offline: "Saved on this phone. It will be sent when you are online.",
    report_sent: "Thank you, your report was sent.",
    report_refused: "Not recorded: {reason}",
    state_scheduled: "Not reported yet",
    state_taken: "Injected",
    state_taken_late: "Injected late",
    state_not_taken: "Not injected",
    state_missed: "Missed",
    state_skipped: "Skipped",
    state_held: "On hold",
    state_cancelled: "Cancelled",
    // calendar
    calendar_title: "Injection calendar",
    calendar_coming: "Coming",
    calendar_past: "Past",
    calendar_empty: "Nothing here.",
    // vas
    vas_title: "How active is your disease?",
    vas_question: "Considering all the ways your disease affects you, how active has it been over the past week? Mark a point on the line.",
    vas_slider_label: "Disease activity over the past week",
    vas_valuetext: "{value} on a line from {min}, {low}, to {max}, {high}",
    vas_unmarked: "no mark yet",
    vas_send: "Send",
    vas_mark_first: "Tap or drag on the line first (or use the arrow keys).",
    vas_readback: "Recorded: {value} on the line from {min} ({low}) to {max} ({high}).",
    vas_readback_pending: "Saved on this phone: {value}. It will be sent when you are online.",
    vas_again: "Rate again",
    vas_history: "Your earlier answers",
    mode_vas_line: "on the line",
    mode_sms_numeric: "as a number",
    // adverse events
    ae_title: "Report a side effect",
    ae_symptom: "What is it?",
    ae_describe: "Describe it in your own words",
    ae_describe_hint: "Required if you chose Other.",
    ae_onset: "When did it start?",
    ae_severity: "How bad is it?",
    ae_mild: "Mild: I notice it but it does not stop me",
    ae_moderate: "Moderate: it gets in the way of what I do",
    ae_severe: "Severe: I cannot do my usual things",
    ae_ongoing: "Is it still going on?",
    ae_hospital: "Did you go to hospital or an emergency department?",
    yes: "Yes",
    no: "No",
    ae_send: "Send report",
    ae_sent: "Thank you. A nurse will review your report.",
    ae_pick_symptom: "Choose what it is, or choose Other and describe it.",
    ae_describe_other: "Please describe it in your own words.",
    ae_earlier: "Side effects you reported",
    ae_site: "site: {site}",
    // the serious screen
    call_title: "Call your study site now",
    call_body: "What you reported may be serious. Please call your study site now. If you are in danger, call the emergency number.",
    call_site: "Call the study site: {phone}",
    call_emergency: "Call emergency: {number}",
    call_close: "I have called / close",
    // messages
    messages_title: "Messages",
    messages_empty: "No messages yet.",
    messages_from_you: "You",
    messages_to_you: "Study team",
    // settings
    settings_title: "Settings",
    settings_reminder: "Daily reminder time",
    settings_language: "Language",
    settings_save: "Save",
    settings_saved: "Saved. Your reminders follow the new settings.",
    settings_needs_connection: "Changing settings needs an internet connection.",
    settings_calendar: "Calendar subscription",
    settings_calendar_intro: "Add your injection days to your phone's calendar. A new link replaces the old one.",
    settings_calendar_make: "Make a calendar link",
    settings_calendar_open: "Subscribe in my calendar app",
    settings_calendar_copy: "Link to copy",
    settings_sign_out: "Sign out of this phone",
    settings_study: "Study {study}, participant {code}",
    error_generic: "Something went wrong: {reason}",
  },
  "zh-CN": {
    app_title: "试验助手",
    nav_label: "页面",
    nav_today: "今天",
    nav_calendar: "日历",
    nav_vas: "病情活动",
    nav_ae: "不良反应",
    nav_messages: "消息",
    nav_settings: "设置",
    offline_banner: "没有网络连接。您报告的内容会保存在本手机上，稍后发送。",
    pending_count: "{n} 条报告等待发送",
    waiting_to_send: "等待发送",
    sent: "已发送",
    loading: "正在加载…",
    activate_title: "连接本手机",
    activate_intro: "请输入研究护士给您的激活码，或用手机相机扫描护士屏幕上的二维码。",
    activate_code: "激活码",
    activate_code_hint: "12 位字母和数字，例如 7KQ2-M9XD-4TBA",
    activate_button: "连接",
    activate_offline: "连接需要网络。请在有网络时再试。",
    activate_failed: "激活码无效：{reason}",
    revoked: "本手机已退出登录。请向您的护士索取新的激活码。",
    signed_out: "您已退出登录。",
    today_title: "今天",
    today_no_doses: "您的研究计划中没有注射安排。",
    today_open: "第 {seq} 次注射 — {date}",
    today_window: "请在 {opens} 至 {closes} 之间报告。",
    today_next: "下一次注射在 {date}（{time} 提醒）。",
    today_none_left: "您的计划中已没有剩余的注射。",
    today_done_taken: "已记录：{time} 已注射。",
    today_done_site: "部位：{site}。",
    today_done_not_taken: "已记录：未注射。",
    today_site_legend: "您在哪里注射？",
    today_site_suggested: "今天建议：{site}（最久未用）。",
    today_site_last: "上次使用 {date}",
    today_site_never: "尚未使用",
    body_map_label: "六个注射部位的身体示意图",
    body_map_note: "左右指您自己身体的左右。",
    i_injected: "我已注射",
    i_could_not: "我没能注射",
    report_saved_offline: "已保存在本手机上，有网络时会自动发送。",
    report_sent: "谢谢，您的报告已发送。",
    report_refused: "未记录：{reason}",
    state_scheduled: "尚未报告",
    state_taken: "已注射",
    state_taken_late: "延迟注射",
    state_not_taken: "未注射",
    state_missed: "漏报",
    state_skipped: "跳过",
    state_held: "暂停",
    state_cancelled: "已取消",
    calendar_title: "注射日历",
    calendar_coming: "即将到来",
    calendar_past: "过去",
    calendar_empty: "暂无内容。",
    vas_title: "您的疾病活动程度如何？",
    vas_question: "综合考虑疾病对您的各种影响，过去一周疾病的活动程度如何？请在线上标出一点。",
    vas_slider_label: "过去一周的疾病活动程度",
    vas_valuetext: "{value}，线的范围从 {min}（{low}）到 {max}（{high}）",
    vas_unmarked: "尚未标记",
    vas_send: "发送",
    vas_mark_first: "请先在线上点按或拖动（也可以用方向键）。",
    vas_readback: "已记录：{value}，线的范围从 {min}（{low}）到 {max}（{high}）。",
    vas_readback_pending: "已保存在本手机上：{value}。有网络时会自动发送。",
    vas_again: "重新评分",
    vas_history: "您之前的回答",
    mode_vas_line: "在线上标记",
    mode_sms_numeric: "数字",
    ae_title: "报告不良反应",
    ae_symptom: "是什么症状？",
    ae_describe: "用您自己的话描述",
    ae_describe_hint: "如果选择“其他”，请务必填写。",
    ae_onset: "什么时候开始的？",
    ae_severity: "有多严重？",
    ae_mild: "轻度：能感觉到，但不影响我做事",
    ae_moderate: "中度：影响我做事",
    ae_severe: "重度：无法进行日常活动",
    ae_ongoing: "现在还在持续吗？",
    ae_hospital: "您是否去了医院或急诊？",
    yes: "是",
    no: "否",
    ae_send: "发送报告",
    ae_sent: "谢谢。护士会查看您的报告。",
    ae_pick_symptom: "请选择症状，或选择“其他”并描述。",
    ae_describe_other: "请用您自己的话描述。",
    ae_earlier: "您报告过的不良反应",
    ae_site: "部位：{site}",
    call_title: "请立即致电研究中心",
    call_body: "您报告的情况可能很严重。请立即致电研究中心。如有危险，请拨打急救电话。",
    call_site: "致电研究中心：{phone}",
    call_emergency: "拨打急救电话：{number}",
    call_close: "我已致电 / 关闭",
    messages_title: "消息",
    messages_empty: "还没有消息。",
    messages_from_you: "您",
    messages_to_you: "研究团队",
    settings_title: "设置",
    settings_reminder: "每日提醒时间",
    settings_language: "语言",
    settings_save: "保存",
    settings_saved: "已保存。提醒将按新设置发送。",
    settings_needs_connection: "修改设置需要网络连接。",
    settings_calendar: "日历订阅",
    settings_calendar_intro: "把您的注射日期加入手机日历。新链接会替换旧链接。",
    settings_calendar_make: "生成日历链接",
    settings_calendar_open: "在日历应用中订阅",
    settings_calendar_copy: "可复制的链接",
    settings_sign_out: "在本手机上退出登录",
    settings_study: "研究 {study}，参与者 {code}",
    error_generic: "出错了：{reason}",
  },
};

export const LANGUAGES = { en: "English", "zh-CN": "简体中文" };

let current = (navigator.language || "").toLowerCase().startsWith("zh") ? "zh-CN" : "en";

export function setLanguage(language) {
  if (CATALOGUE[language]) {
    current = language;
    document.documentElement.lang = language;
  }
}

export function language() {
  return current;
}

export function t(key, params = {}) {
  const text = CATALOGUE[current][key] ?? CATALOGUE.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

// Dates and times in the participant's language and time zone (the zone /api/v1/me gives).
export function formatDate(iso, zone) {
  const date = iso.length === 10 ? new Date(`${iso}T12:00:00Z`) : new Date(iso);
  const options = { weekday: "short", month: "long", day: "numeric" };
  if (iso.length !== 10 && zone) options.timeZone = zone;
  if (iso.length === 10) options.timeZone = "UTC";
  return new Intl.DateTimeFormat(current, options).format(date);
}

export function formatDateTime(iso, zone) {
  const options = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
  if (zone) options.timeZone = zone;
  return new Intl.DateTimeFormat(current, options).format(new Date(iso));
}

export function formatTime(iso, zone) {
  const options = { hour: "2-digit", minute: "2-digit" };
  if (zone) options.timeZone = zone;
  return new Intl.DateTimeFormat(current, options).format(new Date(iso));
}
