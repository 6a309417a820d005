"""Every user-facing text, Chinese first (zh_CN), English available.

``text(lang, key, **values)`` picks the person's language and fills the placeholders; a
test checks that both languages have every key with the same placeholders.
"""

from __future__ import annotations

ZH = "zh_CN"
EN = "en"
LANGUAGES = (ZH, EN)

CATALOGUE: dict[str, dict[str, str]] = {
    # -- registration ---------------------------------------------------------------------
    "stranger": {
        ZH: "您好，您还没有注册，不能报修或查看工单。\n请向管理员索取邀请码，然后发送：/join 邀请码\n"
        "You are not registered yet. Ask your administrator for an invite code and send: /join CODE",
        EN: "You are not registered yet. Ask your administrator for an invite code and send: /join CODE\n"
        "您好，您还没有注册。请发送：/join 邀请码",
    },
    "join.bad_code": {
        ZH: "邀请码无效或已过期。Invite code invalid or expired.",
        EN: "Invite code invalid or expired. 邀请码无效或已过期。",
    },
    "join.done": {
        ZH: "欢迎，{name}！您已加入{site}（{role}）。",
        EN: "Welcome, {name}! You joined {site} as {role}.",
    },
    "join.already": {ZH: "您已经注册过了。", EN: "You are already registered."},
    # -- general -----------------------------------------------------------------------------
    "help": {
        ZH: "报修：发送“报修”或 /report\n我的工单：/my\n取消当前操作：/cancel\n语言：/lang en | /lang zh",
        EN: "Report a fault: /report\nMy tickets: /my\nCancel: /cancel\nLanguage: /lang en | /lang zh",
    },
    "cancelled": {ZH: "已取消。", EN: "Cancelled."},
    "nothing_to_cancel": {ZH: "当前没有进行中的操作。", EN: "Nothing to cancel."},
    "lang.set": {ZH: "语言已设为中文。", EN: "Language set to English."},
    "unknown": {
        ZH: "没看懂。发送“报修”开始报修，或 /help 查看帮助。",
        EN: "Sorry? Send /report to report a fault, or /help.",
    },
    "too_long": {
        ZH: "内容太长（最多 {limit} 字），请精简后再发。",
        EN: "Too long (at most {limit} characters).",
    },
    "stale_button": {ZH: "这个按钮已过期。", EN: "This button has expired."},
    # The new caption of a pressed card (WeCom updates the card in place).
    "card.pressed": {ZH: "{name} 已选择", EN: "{name} chose"},
    "card.caption": {ZH: "{what} · {time}", EN: "{what} · {time}"},
    # -- report wizard -----------------------------------------------------------------------
    "report.site": {ZH: "请选择单位：", EN: "Which site?"},
    "report.subsystem": {ZH: "报修：请选择故障所属系统：", EN: "Report: which system is affected?"},
    "report.asset": {
        ZH: "请选择设备，或直接输入设备名称/位置：",
        EN: "Pick the device, or type its name or place:",
    },
    "report.no_assets": {ZH: "请输入设备名称或位置：", EN: "Type the device's name or place:"},
    "report.asset_unknown": {
        ZH: "未找到设备编号 {code}，请手动选择。",
        EN: "No device {code}; please pick it.",
    },
    "report.describe": {
        ZH: "{where}\n请描述故障现象（可附照片或语音）：",
        EN: "{where}\nWhat happened? (photos and voice notes welcome)",
    },
    "report.file_kept": {
        ZH: "已收到附件，请再用文字描述一下故障。",
        EN: "File kept. Please also describe it.",
    },
    "report.q_stopped": {
        ZH: "业务是否已中断、系统瘫痪，或数据丢失？",
        EN: "Has business stopped, is a system down, or is data lost?",
    },
    "report.q_degraded": {
        ZH: "性能或容量是否部分下降（明显变慢），或冗余设备其中一台故障？",
        EN: "Is performance or capacity partly lost (much slower), or has one of a redundant pair failed?",
    },
    "report.yes_no": {ZH: "请点“是”或“否”。", EN: "Please answer yes or no."},
    "report.summary": {
        ZH: "请确认报修：\n{where}\n{description}\n{promise}",
        EN: "Please confirm:\n{where}\n{description}\n{promise}",
    },
    "report.history": {ZH: "该设备/系统近期故障：", EN: "Earlier faults here:"},
    "report.history_line": {ZH: "· {date} {fix}", EN: "· {date} {fix}"},
    "report.created": {
        ZH: "已提交工单 #{id}（{level}）。工程师将尽快响应，进展会通知您。",
        EN: "Ticket #{id} ({level}) submitted. An engineer will answer soon.",
    },
    "report.window_reminder": {
        ZH: "报修还未完成，请在 {minutes} 分钟内回答，超时将按“{level}”先行派单。",
        EN: "Your report is not finished: answer within {minutes} min or it is filed as {level}.",
    },
    "report.window_expired": {
        ZH: "报修超时，已按“{level}”提交工单 #{id}，工程师会电话联系您确认。",
        EN: "Time is up: ticket #{id} filed as {level}; the engineer will call you.",
    },
    # -- buttons -------------------------------------------------------------------------------
    "btn.yes": {ZH: "是", EN: "Yes"},
    "btn.no": {ZH: "否", EN: "No"},
    "btn.confirm": {ZH: "确认提交", EN: "Submit"},
    "btn.cancel": {ZH: "取消", EN: "Cancel"},
    "btn.ack": {ZH: "接单", EN: "Acknowledge"},
    "btn.arrive": {ZH: "到场", EN: "On site"},
    "btn.restore": {ZH: "已恢复", EN: "Restored"},
    "btn.resolve": {ZH: "已解决", EN: "Resolved"},
    "btn.propose": {ZH: "改级别", EN: "Change level"},
    "btn.hand": {ZH: "转派", EN: "Hand over"},
    "btn.propose_level": {ZH: "建议{level}", EN: "Propose {level}"},
    "btn.set_level": {ZH: "定为{level}", EN: "Set {level}"},
    "btn.accept": {ZH: "同意", EN: "Accept"},
    "btn.reject": {ZH: "不同意", EN: "Reject"},
    "btn.close": {ZH: "确认关闭", EN: "Close"},
    "btn.cancel_ticket": {ZH: "撤销报修", EN: "Withdraw"},
    "btn.cancel_yes": {ZH: "确认撤销", EN: "Yes, withdraw"},
    # -- levels and times ------------------------------------------------------------------------
    "level.1": {ZH: "一级", EN: "Level 1"},
    "level.2": {ZH: "二级", EN: "Level 2"},
    "level.3": {ZH: "三级", EN: "Level 3"},
    "level.name.1": {ZH: "重大故障", EN: "critical"},
    "level.name.2": {ZH: "严重故障", EN: "major"},
    "level.name.3": {ZH: "一般故障", EN: "minor"},
    "promise.response": {ZH: "{span}内响应", EN: "answer within {span}"},
    "promise.restore": {ZH: "{span}内恢复", EN: "restore within {span}"},
    "promise.resolve": {ZH: "{span}内解决", EN: "resolve within {span}"},
    "promise.resolve_arrival": {ZH: "到场后{span}内解决", EN: "resolve within {span} of arrival"},
    "unit.m": {ZH: "{n}分钟", EN: "{n} min"},
    "unit.h": {ZH: "{n}小时", EN: "{n} h"},
    "unit.d": {ZH: "{n}天", EN: "{n} d"},
    "unconfirmed": {ZH: "（待确认）", EN: " (unconfirmed)"},
    # -- tickets ---------------------------------------------------------------------------------
    "status.reported": {ZH: "已报修", EN: "reported"},
    "status.classified": {ZH: "待接单", EN: "waiting"},
    "status.acknowledged": {ZH: "已接单", EN: "acknowledged"},
    "status.on_site": {ZH: "已到场", EN: "on site"},
    "status.restored": {ZH: "已恢复", EN: "restored"},
    "status.resolved": {ZH: "已解决", EN: "resolved"},
    "status.closed": {ZH: "已关闭", EN: "closed"},
    "status.cancelled": {ZH: "已撤销", EN: "cancelled"},
    "role.reporter": {ZH: "报修人", EN: "reporter"},
    "role.engineer": {ZH: "工程师", EN: "engineer"},
    "role.supervisor": {ZH: "维护主管", EN: "supervisor"},
    "role.manager": {ZH: "外包单位主管", EN: "manager"},
    "ticket.card": {
        ZH: "#{id} {level}{unconfirmed}·{status}\n{where}\n{description}\n报修人：{reporter} {phone}",
        EN: "#{id} {level}{unconfirmed} · {status}\n{where}\n{description}\nReporter: {reporter} {phone}",
    },
    "ticket.next_due": {ZH: "{clock}截止 {time}", EN: "{clock} due {time}"},
    "ticket.assignee": {ZH: "处理人：{name}", EN: "Engineer: {name}"},
    "clock.response": {ZH: "响应", EN: "Response"},
    "clock.restore": {ZH: "恢复", EN: "Restore"},
    "clock.resolve": {ZH: "解决", EN: "Resolve"},
    "ticket.new": {ZH: "新报修", EN: "New report"},
    "ticket.call_reporter": {
        ZH: "报修人未完成定级，请电话联系确认级别。",
        EN: "The reporter did not finish classifying: please call them.",
    },
    "event.acknowledge": {ZH: "{actor} 已接单", EN: "{actor} acknowledged"},
    "event.arrive": {ZH: "{actor} 已到场", EN: "{actor} is on site"},
    "event.restore": {ZH: "{actor}：业务已恢复", EN: "{actor}: service restored"},
    "event.resolve": {ZH: "{actor}：故障已解决", EN: "{actor}: fault resolved"},
    "event.close": {ZH: "{actor} 已确认关闭", EN: "{actor} closed the ticket"},
    "event.cancel": {ZH: "{actor} 已撤销报修", EN: "{actor} withdrew the report"},
    "event.propose_level": {
        ZH: "{actor} 建议将级别改为{level}，请确认。",
        EN: "{actor} proposes {level}. Do you agree?",
    },
    "event.accept_level": {ZH: "{actor} 同意改为{level}", EN: "{actor} accepted {level}"},
    "event.reject_level": {ZH: "{actor} 不同意改级别，维持{level}", EN: "{actor} kept {level}"},
    "event.set_level": {ZH: "{actor} 将级别定为{level}", EN: "{actor} set {level}"},
    "pick_level": {ZH: "建议改为哪一级？", EN: "Which level do you propose?"},
    "pick_engineer": {ZH: "转派给哪位工程师？", EN: "Hand the ticket to which engineer?"},
    "event.assign": {ZH: "{actor} 将工单转派给{name}", EN: "{actor} handed the ticket to {name}"},
    "refused": {ZH: "无法办理：{reason}", EN: "Not possible: {reason}"},
    "refused.role": {
        ZH: "您在本单位的身份不能执行此操作。",
        EN: "Your role at this site does not allow this.",
    },
    "refused.member": {ZH: "您不是该工单所属单位的人员。", EN: "You are not a member of this ticket's site."},
    "refused.client_prevails": {
        ZH: "级别已由维护主管确定，只有主管可以更改。",
        EN: "The supervisor set this level; only the supervisor can change it.",
    },
    "refused.no_ticket": {ZH: "没有这个工单。", EN: "No such ticket."},
    "refused.no_access": {
        ZH: "没有这个工单，或您无权办理。",
        EN: "No such ticket, or not one you may act on.",
    },
    "refused.no_proposal": {ZH: "当前没有待确认的级别建议。", EN: "There is no proposed level to answer."},
    "refused.reporter_settled": {
        ZH: "级别已按您的回答确定；如需更改，请联系维护主管。",
        EN: "The level follows your answers; to change it, ask the supervisor.",
    },
    "refused.level_same": {ZH: "工单已经是这个级别。", EN: "The ticket is at that level already."},
    "refused.level_range": {ZH: "级别只能是一级、二级或三级。", EN: "A level is 1, 2 or 3."},
    "refused.assign_engineer": {
        ZH: "只能转派给本单位的工程师。",
        EN: "A ticket can only be handed to an engineer of its site.",
    },
    "refused.assign_holder": {
        ZH: "只有处理人可以转派此工单。",
        EN: "Only the engineer holding the ticket can hand it over.",
    },
    "refused.assign_same": {ZH: "工单已在这位工程师名下。", EN: "The ticket is with that engineer already."},
    "refused.generic": {ZH: "此操作现在无法办理。", EN: "This cannot be done now."},
    "apology": {
        ZH: "抱歉，处理您的消息时出错了，请稍后再发一次。",
        EN: "Sorry, something went wrong with your message; please send it again in a moment.",
    },
    "confirm_cancel": {
        ZH: "确定撤销工单 #{id} 吗？撤销后工程师将不再处理。",
        EN: "Withdraw ticket #{id}? The engineers will stop working on it.",
    },
    "state_now": {ZH: "工单 #{id} 当前状态：{status}", EN: "Ticket #{id} is now: {status}"},
    # -- timers and escalation -------------------------------------------------------------------
    "remind": {
        ZH: "⏰ 工单 #{id}（{level}）{clock}还剩{left}，截止 {time}",
        EN: "⏰ Ticket #{id} ({level}): {clock} due in {left}, at {time}",
    },
    "breach": {
        ZH: "⚠️ 工单 #{id}（{level}）{clock}已超时，截止时间 {time}",
        EN: "⚠️ Ticket #{id} ({level}): {clock} missed, it was due at {time}",
    },
    "rise": {
        ZH: "⬆️ 工单 #{id} 未按时解决，已由{old}升为{new}，新的时限从现在起算",
        EN: "⬆️ Ticket #{id} was not resolved in time: raised from {old} to {new}; new deadlines start now",
    },
    "manager_flag": {
        ZH: "‼️ 一级工单 #{id} 未按时解决，请外包单位主管介入",
        EN: "‼️ Level-1 ticket #{id} missed its resolve deadline: the vendor's manager must step in",
    },
    "delivery_failed": {
        ZH: "❗ 无法给{name}发送消息（{reason}），请电话联系。",
        EN: "❗ Messages to {name} cannot be delivered ({reason}); please phone them.",
    },
    "digest": {ZH: "（合并的 {count} 条消息）", EN: "({count} messages combined)"},
    "overview": {
        ZH: "📊 每日概览 · {site} · {date}\n未关闭工单：{open}（一级 {critical}）\n2小时内到期：{at_risk}\n昨日超时：{breached}\n未安排值班的节假日：{uncovered}",
        EN: "📊 Daily overview · {site} · {date}\nOpen tickets: {open} (level 1: {critical})\nDue within 2 h: {at_risk}\nMissed yesterday: {breached}\nDays off without a duty engineer: {uncovered}",
    },
    "none": {ZH: "无", EN: "none"},
    "inspection": {
        ZH: "📋 本周巡检提醒：请完成各子系统巡检，并填写《信息化系统设备巡检报告》。",
        EN: "📋 Weekly inspection: please inspect every subsystem and fill in the inspection report.",
    },
    # -- fault handling report ---------------------------------------------------------------------
    "fault.cause": {ZH: "请填写故障处理报告。\n1/3 故障原因：", EN: "Fault report.\n1/3 Cause:"},
    "fault.fix": {ZH: "2/3 处理方法：", EN: "2/3 What fixed it:"},
    "fault.prevention": {ZH: "3/3 预防建议：", EN: "3/3 Prevention advice:"},
    "fault.saved": {ZH: "故障处理报告已保存（工单 #{id}）。", EN: "Fault report saved (ticket #{id})."},
    # -- my tickets ---------------------------------------------------------------------------------
    "my.none": {ZH: "您没有未关闭的工单。", EN: "You have no open tickets."},
    "my.title": {ZH: "未关闭的工单：", EN: "Open tickets:"},
    "my.line": {
        ZH: "#{id} {level} {status} · {where} · {left}",
        EN: "#{id} {level} {status} · {where} · {left}",
    },
    "my.left": {ZH: "{clock}剩余{span}", EN: "{clock} in {span}"},
    "my.overdue": {ZH: "{clock}已超时{span}", EN: "{clock} overdue by {span}"},
    "my.no_clock": {ZH: "无进行中的时限", EN: "no running deadline"},
    "my.waits.ack": {ZH: "待您接单", EN: "waiting for you to take it"},
    "my.waits.level": {ZH: "待您确认级别", EN: "waiting for your word on the level"},
    "my.waits.close": {ZH: "待您确认关闭", EN: "waiting for you to close it"},
}


def text(lang: str, key: str, **values: object) -> str:
    """The catalogue entry ``key`` in ``lang`` (Chinese when unknown), placeholders filled."""
    entry = CATALOGUE[key]
    template = entry.get(lang) or entry[ZH]
    return template.format(**values) if values else template


def language_of(setting: str | None) -> str:
    """Map a stored or platform language code to a catalogue language."""
    if setting and setting.lower().startswith("en"):
        return EN
    return ZH
