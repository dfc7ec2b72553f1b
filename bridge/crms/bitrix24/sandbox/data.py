"""Static tables of the Bitrix24 sandbox, copied from the REST docs (see each block's citation).

Kept apart from the logic so that a reviewer can diff them against the documentation pages.
"""

from __future__ import annotations

from typing import Any

# (name, type, title, flags, extra): flags are q=isRequired r=isReadOnly i=isImmutable m=isMultiple.
FieldSpec = tuple[Any, ...]

# D:api-reference/crm/deals/crm-deal-fields.md
DEAL_FIELDS: tuple[FieldSpec, ...] = (
    ("ID", "integer", "ID", "r"),
    ("TITLE", "string", "Title", ""),
    ("TYPE_ID", "crm_status", "Type", "", {"statusType": "DEAL_TYPE"}),
    ("CATEGORY_ID", "crm_category", "Sales Funnel", "i"),
    ("STAGE_ID", "crm_status", "Deal Stage", "", {"statusType": "DEAL_STAGE"}),
    ("STAGE_SEMANTIC_ID", "string", "Stage Group", "r"),
    ("IS_NEW", "char", "New Deal", "r"),
    ("IS_RECURRING", "char", "Recurring Deal", ""),
    ("IS_RETURN_CUSTOMER", "char", "Repeat Deal", ""),
    ("IS_REPEATED_APPROACH", "char", "Repeated Approach", ""),
    ("PROBABILITY", "integer", "Probability", ""),
    ("CURRENCY_ID", "crm_currency", "Currency", ""),
    ("OPPORTUNITY", "double", "Amount", ""),
    ("IS_MANUAL_OPPORTUNITY", "char", "IS_MANUAL_OPPORTUNITY", ""),
    ("TAX_VALUE", "double", "Tax Rate", ""),
    ("COMPANY_ID", "crm_company", "Company", "", {"settings": {"parentEntityTypeId": 4}}),
    ("CONTACT_ID", "crm_contact", "Contact", "", {"isDeprecated": True}),
    ("CONTACT_IDS", "crm_contact", "Contacts", "m"),
    ("QUOTE_ID", "crm_quote", "Estimate", "r", {"settings": {"parentEntityTypeId": 7}}),
    ("BEGINDATE", "date", "Start Date", ""),
    ("CLOSEDATE", "date", "Close Date", ""),
    ("OPENED", "char", "Available to All", ""),
    ("CLOSED", "char", "Closed", ""),
    ("COMMENTS", "string", "Comment", ""),
    ("ASSIGNED_BY_ID", "user", "Responsible", ""),
    ("CREATED_BY_ID", "user", "Created By", "r"),
    ("MODIFY_BY_ID", "user", "Modified By", "r"),
    ("MOVED_BY_ID", "user", "MOVED_BY_ID", "r"),
    ("DATE_CREATE", "datetime", "Creation Date", "r"),
    ("DATE_MODIFY", "datetime", "Modification Date", "r"),
    ("MOVED_TIME", "datetime", "MOVED_TIME", "r"),
    ("SOURCE_ID", "crm_status", "Source", "", {"statusType": "SOURCE"}),
    ("SOURCE_DESCRIPTION", "string", "Additional Info about Source", ""),
    ("LEAD_ID", "crm_lead", "Lead", "r", {"settings": {"parentEntityTypeId": 1}}),
    ("ADDITIONAL_INFO", "string", "Additional Information", ""),
    ("LOCATION_ID", "location", "Location", ""),
    ("ORIGINATOR_ID", "string", "External Source", ""),
    ("ORIGIN_ID", "string", "Identifier in External Source", ""),
    ("UTM_SOURCE", "string", "Advertising System", ""),
    ("UTM_MEDIUM", "string", "Traffic Type", ""),
    ("UTM_CAMPAIGN", "string", "Campaign Identifier", ""),
    ("UTM_CONTENT", "string", "Campaign Content", ""),
    ("UTM_TERM", "string", "Campaign Search Condition", ""),
    ("LAST_ACTIVITY_TIME", "datetime", "LAST_ACTIVITY_TIME", "r"),
    ("LAST_ACTIVITY_BY", "user", "LAST_ACTIVITY_BY", "r"),
)
# D:api-reference/crm/leads/crm-lead-fields.md

LEAD_FIELDS: tuple[FieldSpec, ...] = (
    ("ID", "integer", "ID", "r"),
    ("TITLE", "string", "Lead Title", ""),
    ("HONORIFIC", "crm_status", "Salutation", "", {"statusType": "HONORIFIC"}),
    ("NAME", "string", "First Name", ""),
    ("SECOND_NAME", "string", "Middle Name", ""),
    ("LAST_NAME", "string", "Last Name", ""),
    ("BIRTHDATE", "date", "Birthdate", ""),
    ("COMPANY_TITLE", "string", "Company Name", ""),
    ("SOURCE_ID", "crm_status", "Source", "", {"statusType": "SOURCE"}),
    ("SOURCE_DESCRIPTION", "string", "Source Description", ""),
    ("STATUS_ID", "crm_status", "Stage", "", {"statusType": "STATUS"}),
    ("STATUS_DESCRIPTION", "string", "Stage Description", ""),
    ("STATUS_SEMANTIC_ID", "string", "Status Semantic", "r"),
    ("POST", "string", "Position", ""),
    ("ADDRESS", "string", "Address", ""),
    ("ADDRESS_2", "string", "Address (Line 2)", ""),
    ("ADDRESS_CITY", "string", "City", ""),
    ("ADDRESS_POSTAL_CODE", "string", "Postal Code", ""),
    ("ADDRESS_REGION", "string", "Region", ""),
    ("ADDRESS_PROVINCE", "string", "Province", ""),
    ("ADDRESS_COUNTRY", "string", "Country", ""),
    ("ADDRESS_COUNTRY_CODE", "string", "Country Code", ""),
    ("ADDRESS_LOC_ADDR_ID", "integer", "Location Address ID", ""),
    ("CURRENCY_ID", "crm_currency", "Currency", ""),
    ("OPPORTUNITY", "double", "Amount", ""),
    ("IS_MANUAL_OPPORTUNITY", "char", "IS_MANUAL_OPPORTUNITY", ""),
    ("OPENED", "char", "Available to All", ""),
    ("COMMENTS", "string", "Comments", ""),
    ("HAS_PHONE", "char", "Phone Provided", "r"),
    ("HAS_EMAIL", "char", "Email Provided", "r"),
    ("HAS_IMOL", "char", "Open Line Assigned", "r"),
    ("ASSIGNED_BY_ID", "user", "Responsible User", ""),
    ("CREATED_BY_ID", "user", "Created By", "r"),
    ("MODIFY_BY_ID", "user", "Modified By", "r"),
    ("MOVED_BY_ID", "user", "MOVED_BY_ID", "r"),
    ("DATE_CREATE", "datetime", "Creation Date", "r"),
    ("DATE_MODIFY", "datetime", "Modification Date", "r"),
    ("MOVED_TIME", "datetime", "MOVED_TIME", "r"),
    ("COMPANY_ID", "crm_company", "Company", "", {"settings": {"parentEntityTypeId": 4}}),
    ("CONTACT_ID", "crm_contact", "Contact", "", {"isDeprecated": True}),
    ("CONTACT_IDS", "crm_contact", "CONTACT_IDS", "m"),
    ("IS_RETURN_CUSTOMER", "char", "Returning Lead", "r"),
    ("DATE_CLOSED", "datetime", "Closing Date", "r"),
    ("ORIGINATOR_ID", "string", "External Source", ""),
    ("ORIGIN_ID", "string", "Identifier in External Source", ""),
    ("UTM_SOURCE", "string", "Advertising System", ""),
    ("UTM_MEDIUM", "string", "Traffic Type", ""),
    ("UTM_CAMPAIGN", "string", "Campaign Identifier", ""),
    ("UTM_CONTENT", "string", "Campaign Content", ""),
    ("UTM_TERM", "string", "Campaign Search Term", ""),
    ("LAST_ACTIVITY_TIME", "datetime", "LAST_ACTIVITY_TIME", "r"),
    ("LAST_ACTIVITY_BY", "user", "LAST_ACTIVITY_BY", "r"),
    ("PHONE", "crm_multifield", "Phone", "m"),
    ("EMAIL", "crm_multifield", "E-mail", "m"),
    ("WEB", "crm_multifield", "Website", "m"),
    ("IM", "crm_multifield", "Messenger", "m"),
    ("LINK", "crm_multifield", "LINK", "m"),
)

# User-field settings by type, as crm.*.fields returns them.
# D:api-reference/crm/_include/user-fields-for-examples-cut.md
UF_SETTINGS: dict[str, dict[str, Any]] = {
    "string": {
        "SIZE": 20,
        "ROWS": 1,
        "REGEXP": "",
        "MIN_LENGTH": 0,
        "MAX_LENGTH": 0,
        "DEFAULT_VALUE": "",
    },
    "enumeration": {
        "DISPLAY": "LIST",
        "LIST_HEIGHT": 1,
        "CAPTION_NO_VALUE": "",
        "SHOW_NO_VALUE": "Y",
    },
    "date": {"DEFAULT_VALUE": {"TYPE": "NONE", "VALUE": ""}},
    "money": {"DEFAULT_VALUE": ""},
    "double": {"PRECISION": 2, "SIZE": 20, "MIN_VALUE": 0, "MAX_VALUE": 0, "DEFAULT_VALUE": None},
}

# (ID, STATUS_ID, NAME, NAME_INIT, SORT, SYSTEM, COLOR, SEMANTICS, EXTRA.SEMANTICS)
StatusRow = tuple[str, str, str, str, str, str, str, str | None, str]

# The standard general pipeline, item for item. D:api-reference/crm/status/crm-status-list.md
DEFAULT_DEAL_STAGES: tuple[StatusRow, ...] = (
    ("101", "NEW", "New", "New", "10", "Y", "#39A8EF", None, "process"),
    ("103", "PREPARATION", "Document preparation", "", "20", "N", "#2FC6F6", None, "process"),
    ("105", "PREPAYMENT_INVOICE", "Prepayment invoice", "", "30", "N", "#55D0E0", None, "process"),
    ("107", "EXECUTING", "In progress", "", "40", "N", "#47E4C2", None, "process"),
    ("109", "FINAL_INVOICE", "Final invoice", "", "50", "N", "#FFA900", None, "process"),
    ("111", "WON", "Deal successful", "Deal successful", "60", "Y", "#7BD500", "S", "success"),
    ("113", "LOSE", "Deal failed", "Deal failed", "70", "Y", "#FF5752", "F", "failure"),
    ("115", "APOLOGY", "Failure reason analysis", "", "80", "N", "#FF5752", "F", "apology"),
)

# Lead stages: the five defaults of D:api-reference/crm/leads/crm-lead-add.md (STATUS_ID),
# with ID/SORT/COLOR/names as crm.status.list returns them where the docs show the item
# (D:tutorials/crm/how-to-get-lists/how-to-get-stages-with-semantics.md: NEW, CONVERTED, JUNK).
DEFAULT_LEAD_STATUSES: tuple[StatusRow, ...] = (
    ("1", "NEW", "Not processed", "Not processed", "10", "Y", "#00FFFF", None, "process"),
    ("3", "IN_PROCESS", "In process", "", "20", "N", "#47E4C2", None, "process"),
    ("5", "PROCESSED", "Processed", "", "30", "N", "#FFA900", None, "process"),
    ("15", "CONVERTED", "Converted", "Converted", "50", "Y", "#37B44A", "S", "success"),
    ("17", "JUNK", "Low-quality lead", "Low-quality lead", "60", "Y", "#F54819", "F", "failure"),
)

# Colours for stages added through add_pipeline, by semantics (values of the list above).
STAGE_COLORS = {"P": ("#39A8EF", "#2FC6F6", "#55D0E0", "#47E4C2", "#FFA900"), "S": ("#7BD500",)}
STAGE_COLORS["F"] = ("#FF5752",)
EXTRA_SEMANTICS = {"P": "process", "S": "success", "F": "failure"}

# Directory types without stages. D:api-reference/crm/status/crm-status-entity-types.md
PLAIN_ENTITY_TYPES: tuple[tuple[str, str], ...] = (
    ("SOURCE", "Sources"),
    ("CONTACT_TYPE", "Contact type"),
    ("COMPANY_TYPE", "Company type"),
    ("EMPLOYEES", "Number of employees"),
    ("INDUSTRY", "Industry"),
    ("DEAL_TYPE", "Deal type"),
    ("HONORIFIC", "Inquiries"),
    ("CALL_LIST", "Call statuses"),
)

# A new task as tasks.task.add returns it (bulky nested blocks such as `action` and
# `checkListTree` are left out). D:api-reference/tasks/tasks-task-add.md
TASK_TEMPLATE: dict[str, Any] = {
    "id": None,
    "parentId": None,
    "title": "",
    "description": "",
    "mark": None,
    "priority": "1",
    "multitask": "N",
    "notViewed": "N",
    "replicate": "N",
    "stageId": "0",
    "createdBy": None,
    "createdDate": None,
    "responsibleId": None,
    "changedBy": None,
    "changedDate": None,
    "statusChangedBy": None,
    "closedBy": None,
    "closedDate": None,
    "activityDate": None,
    "dateStart": None,
    "deadline": None,
    "startDatePlan": None,
    "endDatePlan": None,
    "guid": None,
    "xmlId": None,
    "commentsCount": None,
    "serviceCommentsCount": None,
    "allowChangeDeadline": "N",
    "allowTimeTracking": "N",
    "taskControl": "N",
    "addInReport": "N",
    "forkedByTemplateId": None,
    "timeEstimate": "0",
    "timeSpentInLogs": None,
    "matchWorkTime": "N",
    "forumTopicId": None,
    "forumId": None,
    "siteId": "s1",
    "subordinate": "Y",
    "exchangeModified": None,
    "exchangeId": None,
    "outlookVersion": "1",
    "viewedDate": None,
    "sorting": None,
    "durationFact": None,
    "isMuted": "N",
    "isPinned": "N",
    "isPinnedInGroup": "N",
    "flowId": None,
    "descriptionInBbcode": "Y",
    "status": "2",
    "statusChangedDate": None,
    "durationPlan": None,
    "durationType": "days",
    "favorite": "N",
    "groupId": "0",
    "auditors": [],
    "accomplices": [],
    "checklist": [],
    "group": [],
    "creator": None,
    "responsible": None,
    "accomplicesData": [],
    "auditorsData": [],
    "newCommentsCount": 0,
}

# System task fields returned only when one of them is selected. D:api-reference/tasks/fields.md
TASK_HIDDEN_UF = ("UF_CRM_TASK", "UF_TASK_WEBDAV_FILES", "UF_MAIL_MESSAGE")

# Task fields a caller may set, UPPER_CASE as tasks.task.getFields names them.
# D:api-reference/tasks/tasks-task-get-fields.md
TASK_WRITABLE = frozenset(
    {
        *("TITLE", "DESCRIPTION", "MARK", "PRIORITY", "STATUS", "PARENT_ID", "GROUP_ID"),
        *("STAGE_ID", "CREATED_BY", "RESPONSIBLE_ID", "ACCOMPLICES", "AUDITORS", "DATE_START"),
        *("DEADLINE", "START_DATE_PLAN", "END_DATE_PLAN", "XML_ID", "ALLOW_CHANGE_DEADLINE"),
        *("ALLOW_TIME_TRACKING", "TASK_CONTROL", "ADD_IN_REPORT", "TIME_ESTIMATE"),
        *("MATCH_WORK_TIME", "DURATION_PLAN", "DURATION_TYPE", "UF_CRM_TASK"),
    }
)

# Filter keys of tasks.task.list (D:api-reference/tasks/tasks-task-list.md) plus XML_ID, which
# the same task filter accepts (D:api-reference/tasks/deprecated/task-items-get-list.md).
# Maps to the stored task's key where they differ; keys not listed are ignored.
TASK_FILTER_KEYS: dict[str, str] = {
    **{k: k for k in ("ID", "PARENT_ID", "GROUP_ID", "CREATED_BY", "STATUS_CHANGED_BY")},
    **{k: k for k in ("PRIORITY", "FORUM_TOPIC_ID", "RESPONSIBLE_ID", "TITLE", "MARK")},
    **{k: k for k in ("XML_ID", "SITE_ID", "ADD_IN_REPORT", "DATE_START", "DEADLINE")},
    **{k: k for k in ("CREATED_DATE", "CLOSED_DATE", "CHANGED_DATE", "STAGE_ID", "UF_CRM_TASK")},
    # REAL_STATUS "corresponds to the status field"; STATUS adds meta-statuses we do not model.
    "REAL_STATUS": "STATUS",
    "STATUS": "STATUS",
    "ACCOMPLICE": "ACCOMPLICES",
    "AUDITOR": "AUDITORS",
}

# An activity as crm.activity.get returns it:
# D:api-reference/crm/timeline/activities/activity-base/crm-activity-get.md
# Defaults describe a pending universal to-do: TYPE_ID 6 "activities managed by providers"
# (D:api-reference/crm/data-types.md#activity-enums), PROVIDER_ID CRM_TODO
# (D:api-reference/crm/timeline/activities/todo/index.md).
ACTIVITY_TEMPLATE: dict[str, Any] = {
    "ID": None,
    "OWNER_ID": None,
    "OWNER_TYPE_ID": None,
    "TYPE_ID": "6",
    "PROVIDER_ID": "CRM_TODO",
    "PROVIDER_TYPE_ID": None,
    "PROVIDER_GROUP_ID": None,
    "ASSOCIATED_ENTITY_ID": "0",
    "SUBJECT": "",
    "CREATED": None,
    "LAST_UPDATED": None,
    "START_TIME": None,
    "END_TIME": None,
    "DEADLINE": None,
    "COMPLETED": "N",
    "STATUS": "1",
    "RESPONSIBLE_ID": None,
    "PRIORITY": "2",
    "NOTIFY_TYPE": "1",
    "NOTIFY_VALUE": "15",
    "DESCRIPTION": "",
    "DESCRIPTION_TYPE": "1",
    "DIRECTION": "0",
    "LOCATION": "",
    "SETTINGS": [],
    "ORIGINATOR_ID": None,
    "ORIGIN_ID": None,
    "AUTHOR_ID": None,
    "EDITOR_ID": None,
    "PROVIDER_PARAMS": [],
    "PROVIDER_DATA": None,
    "RESULT_MARK": "0",
    "RESULT_VALUE": None,
    "RESULT_SUM": None,
    "RESULT_CURRENCY_ID": None,
    "RESULT_STATUS": "0",
    "RESULT_STREAM": "0",
    "RESULT_SOURCE_ID": None,
    "AUTOCOMPLETE_RULE": "0",
}

# Selected only on request ("To get the fields COMMUNICATIONS and FILES, specify them in select").
# D:api-reference/crm/timeline/activities/activity-base/crm-activity-list.md
ACTIVITY_ON_REQUEST = ("COMMUNICATIONS", "FILES")
