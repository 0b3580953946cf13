"""Every user-facing string of the dashboard, in Vietnamese (the default) and English: the
single catalogue (the core's pages, the plugins' pages, the labels of systems, events and
states); numbers, money, dates and months are formatted from CLDR data through Babel.

Keys are grouped by page; add a key to both languages (a test checks that every key exists
in both, with the same placeholders, and that every key a template uses exists).

The language is ``?lang=vi|en`` (remembered in the ``lang`` cookie), else the cookie, else
Vietnamese. Placeholders are ``str.format`` fields.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from aiohttp import web
from babel import dates as babel_dates
from babel import numbers as babel_numbers

from gateway.model import VN_TZ

LANGS = ("vi", "en")
DEFAULT_LANG = "vi"
LANG_COOKIE = "lang"

MESSAGES: dict[str, dict[str, str]] = {
    "vi": {
        "app_title": "Cổng liên thông hồ sơ trợ giúp xã hội",
        "app_short": "Cổng liên thông BTXH",
        "nav_overview": "Tổng quan",
        "nav_log": "Nhật ký gửi",
        "nav_dossiers": "Hồ sơ",
        "nav_dead": "Gửi lỗi",
        "nav_audit": "Nhật ký thao tác",
        "signin": "Đăng nhập",
        "signout": "Đăng xuất",
        "token": "Mã truy cập",
        "signin_help": "Nhập mã truy cập (token) do quản trị viên cấp cho bạn.",
        "signin_failed": "Mã truy cập không đúng hoặc đã bị thu hồi.",
        "role_viewer": "Xem",
        "role_operator": "Vận hành",
        "role_admin": "Quản trị",
        "switch_lang": "English",
        "node": "Máy chủ {node}",
        "masked_note": "Họ tên và số định danh được che để bảo vệ dữ liệu cá nhân.",
        "overview_title": "Tổng quan hệ thống",
        "col_system": "Hệ thống",
        "col_queue": "Đang chờ",
        "col_in_flight": "Đang gửi",
        "col_received_1h": "Đã nhận (1 giờ)",
        "col_delivered_1h": "Gửi được (1 giờ)",
        "col_failed_1h": "Gửi lỗi (1 giờ)",
        "col_p95": "Thời gian p95",
        "col_breaker": "Ngắt mạch",
        "col_dead": "Chờ xử lý lỗi",
        "col_last_error": "Lỗi gần nhất",
        "menu": "Danh mục",
        "breaker_closed": "Bình thường",
        "breaker_half_open": "Đang thử lại",
        "breaker_open": "Đang ngắt",
        "chart_title": "24 giờ qua",
        "chart_caption": "{system}: gửi được {delivered}, lỗi {failed}",
        "chart_totals": "gửi được {delivered} · lỗi {failed}",
        "chart_empty": "Không có lượt gửi nào trong 24 giờ qua",
        "action_signin": "Đăng nhập",
        "action_signout": "Đăng xuất",
        "action_retry": "Gửi lại",
        "legend_delivered": "Gửi được",
        "legend_failed": "Lỗi",
        "no_systems": "Chưa cấu hình hệ thống nào.",
        "live_on": "Tự cập nhật mỗi {seconds} giây",
        "live_paused": "Đã tạm dừng cập nhật",
        "live_pause": "Tạm dừng cập nhật",
        "live_resume": "Tiếp tục cập nhật",
        "live_failed": "Không cập nhật được, sẽ thử lại",
        "updated_at": "Cập nhật lúc {time}",
        "log_title": "Nhật ký gửi",
        "filter_system": "Hệ thống",
        "filter_all": "Tất cả",
        "filter_outcome": "Kết quả",
        "filter_dossier": "Mã hồ sơ",
        "filter_since": "Từ",
        "filter_until": "Đến",
        "filter_apply": "Lọc",
        "filter_clear": "Xóa bộ lọc",
        "export_csv": "Xuất CSV",
        "outcome_delivered": "Gửi được",
        "outcome_retry_scheduled": "Chờ gửi lại",
        "outcome_dead": "Gửi lỗi",
        "outcome_replayed": "Gửi lại thủ công",
        "outcome_refused": "Bị từ chối",
        "col_time": "Thời gian",
        "col_delivery": "Lượt gửi",
        "col_dossier": "Mã hồ sơ",
        "col_route": "Nguồn → nơi nhận",
        "col_attempt": "Lần",
        "col_outcome": "Kết quả",
        "col_http": "HTTP",
        "col_duration": "Thời lượng",
        "col_error": "Kết quả / phản hồi",
        "col_actor": "Người thao tác",
        "page_older": "Cũ hơn →",
        "page_newest": "← Mới nhất",
        "empty_log": "Không có lượt gửi nào khớp bộ lọc.",
        "bad_time": "Thời gian không hợp lệ: {value}",
        "delivery_title": "Lượt gửi #{id}",
        "f_status": "Trạng thái",
        "f_destination": "Nơi nhận",
        "f_source": "Nguồn",
        "f_event": "Sự kiện",
        "f_route": "Tuyến",
        "f_ref": "Tham chiếu",
        "f_attempts": "Số lần gửi",
        "f_created": "Tạo lúc",
        "f_next_attempt": "Lần gửi tới",
        "f_deadline": "Hạn cuối",
        "f_delivered_at": "Gửi được lúc",
        "f_last_error": "Lỗi gần nhất",
        "f_idempotency": "Khóa chống gửi trùng",
        "payload": "Nội dung (đã che dữ liệu cá nhân)",
        "payload_revealed": "Nội dung đầy đủ (lần xem này đã được ghi nhật ký)",
        "reveal": "Xem đầy đủ (ghi nhật ký)",
        "attempts_title": "Các lần gửi",
        "status_pending": "Chờ gửi",
        "status_in_flight": "Đang gửi",
        "status_delivered": "Đã gửi",
        "status_dead": "Gửi lỗi",
        "not_found": "Không tìm thấy",
        "no_delivery": "Không có lượt gửi #{id}.",
        "dossiers_title": "Tra cứu hồ sơ",
        "dossier_help": "Nhập mã hồ sơ (MaHoSo) để xem mọi thông điệp và lượt gửi qua ba hệ thống.",
        "search": "Tra cứu",
        "timeline_title": "Dòng thời gian hồ sơ {key}",
        "ev_received": "Nhận «{event}» từ {source} (phiên bản {revision})",
        "ev_attempt": "Gửi tới {destination}, lần {attempt}",
        "ev_answer_to": "(phản hồi của lượt gửi #{id})",
        "pager": "Chuyển trang",
        "deliveries_now": "Trạng thái các lượt gửi",
        "no_dossier": "Cổng chưa nhận hồ sơ nào có mã {key}.",
        "dead_title": "Gửi lỗi cần xử lý",
        "dead_help": (
            "Các lượt gửi đã dừng vì lỗi không tự khắc phục được hoặc đã quá hạn. "
            "Hãy xử lý nguyên nhân rồi bấm «Gửi lại»."
        ),
        "col_reason": "Lý do",
        "col_payload": "Nội dung",
        "col_updated": "Cập nhật",
        "show_payload": "Xem nội dung",
        "retry": "Gửi lại",
        "retry_selected": "Gửi lại các mục đã chọn",
        "select_all": "Chọn tất cả",
        "select_row": "Chọn lượt gửi #{id}",
        "dead_empty": "Không có lượt gửi lỗi nào.",
        "confirm_title": "Xác nhận gửi lại",
        "confirm_text": (
            "Các lượt gửi dưới đây sẽ được đưa lại vào hàng đợi. "
            "Thao tác được ghi vào nhật ký với tên của bạn."
        ),
        "confirm_button": "Xác nhận gửi lại",
        "cancel": "Hủy",
        "nothing_selected": "Chưa chọn lượt gửi nào.",
        "retried_flash": "Đã đưa {count} lượt gửi trở lại hàng đợi.",
        "skipped_flash": "{count} lượt gửi không còn ở trạng thái lỗi nên được bỏ qua.",
        "viewer_readonly": "Bạn chỉ có quyền xem; cần quyền vận hành để gửi lại.",
        "audit_title": "Nhật ký thao tác",
        "col_action": "Thao tác",
        "col_target": "Đối tượng",
        "col_detail": "Chi tiết",
        "audit_empty": "Chưa có thao tác nào.",
        "forbidden_title": "Không có quyền",
        "forbidden_text": "Vai trò «{role}» không được phép thực hiện việc này.",
        "csrf_title": "Biểu mẫu không hợp lệ",
        "csrf_text": "Biểu mẫu đã hết hạn hoặc không hợp lệ. Hãy tải lại trang và thử lại.",
        "throttled_title": "Quá nhiều lần đăng nhập sai",
        "throttled_text": (
            "Có quá nhiều lần xác thực sai từ địa chỉ này. Hãy thử lại sau {seconds} giây."
        ),
        "signin_first": "Phiên làm việc đã kết thúc. Vui lòng đăng nhập lại.",
        "back": "Quay lại",
        "total": "Tổng",
        # -- what the systems, events and states are called (labels.py) --
        "plugin_district_registry": "Phần mềm quản lý đối tượng BTXH",
        "plugin_http_json": "Hệ thống HTTP/JSON",
        "plugin_one_stop_shop": "Bộ phận một cửa",
        "plugin_post_office": "Bưu điện chi trả",
        "plugin_social_assistance": "Chi trả trợ cấp hàng tháng",
        "event_decision.issued": "Quyết định hưởng trợ cấp",
        "event_dossier.accepted": "Hồ sơ được tiếp nhận xử lý",
        "event_dossier.received": "Hồ sơ nộp tại bộ phận một cửa",
        "event_dossier.refused": "Hồ sơ bị từ chối",
        "event_message.received": "Thông điệp",
        "event_payment.list": "Danh sách chi trả",
        "event_payment.results": "Kết quả chi trả",
        "event_payment.suspension_candidates": "Đề nghị tạm dừng chi trả",
        "status_not_routed": "Chưa có tuyến gửi",
        "biendong_dieu_chinh": "Điều chỉnh mức",
        "biendong_giam": "Thôi hưởng",
        "biendong_khong_doi": "Không thay đổi",
        "biendong_tam_dung": "Tạm dừng",
        "biendong_tang": "Hưởng mới",
        "biendong_tiep_tuc": "Hưởng tiếp",
        "commune_new": "xã mới",
        "commune_old": "mã cũ",
        "month_pattern": "'Tháng' MM/yyyy",
        "date_pattern": "dd/MM/yyyy",
        "time_pattern": "dd/MM/yyyy HH:mm:ss",
        # -- the connectors' answers and errors, stored "vi / en" by both() (receipts first) --
        "ans_http": "HTTP {status} từ nơi nhận",
        "ans_no_reason": "không có lý do",
        "ans_po_already": "bưu điện đã nhận lần gửi này trước đó",
        "ans_po_received": "bưu điện đã tiếp nhận {lines} dòng",
        "ans_po_received_differs": "bưu điện tiếp nhận {lines} dòng, khác {sent} dòng đã gửi",
        "ans_po_unreadable": "không đọc được biên nhận TiepNhan",
        "ans_sa_amount_differs": "đánh dấu: số tiền khác dòng trong danh sách",
        "ans_sa_duplicate": "dòng kết quả trùng",
        "ans_sa_no_list": "giữ lại, đánh dấu: chưa gửi danh sách cho xã {commune} kỳ {ky}",
        "ans_sa_not_on_list": "đánh dấu: không có trong danh sách",
        "ans_sa_paid": "đã chi",
        "ans_sa_unpaid": "chưa chi",
        "ans_registry_has": "phần mềm quản lý đã có phiên bản {revision} (409)",
        "ans_registry_has_list": "phần mềm quản lý đã có danh sách kỳ {ky} xã {commune} (409)",
        "ans_registry_receipt": "biên nhận số {number}",
        "ans_registry_refused": "bị phần mềm quản lý từ chối (mã {code})",
        "ans_registry_took_list": "đã tiếp nhận đề nghị kỳ {ky} xã {commune}: {lines} dòng",
        "ans_unreadable": "đã nhận (HTTP {status}) nhưng không đọc được câu trả lời",
        "err_connection": "không kết nối được",
        "err_not_destination": "hệ thống {system} không phải nơi nhận",
        "err_payload_object": "nội dung phải là đối tượng JSON",
        "err_po_event": "bưu điện không nhận sự kiện {event}",
        "err_po_invalid": "tài liệu không hợp lệ, lỗi của gateway",
        "err_po_refused": "bên chi trả từ chối danh sách",
        "err_registry_invalid": (
            "phần mềm quản lý từ chối tài liệu vì không hợp lệ (lỗi của gateway)"
        ),
        "err_registry_list_refused": (
            "phần mềm quản lý từ chối danh sách đề nghị tạm dừng (mã {code})"
        ),
        "err_sa_decision": "quyết định không hợp lệ",
        "err_sa_event": "social_assistance không nhận sự kiện {event}",
        "err_sa_result": "kết quả chi trả không hợp lệ",
        "err_redirect": (
            "HTTP {status} chuyển hướng tới {location}, không làm theo: gateway không bao giờ gửi "
            "tài liệu sang địa chỉ khác (kiểm tra systems.{system}.base_url)"
        ),
        "err_timeout": "quá thời gian chờ",
        "err_unexpected": "lỗi ngoài dự kiến",
        "err_not_set": "chưa cấu hình {key} cho hệ thống {system}",
        "ans_oss_has_result": "hồ sơ {dossier} đã có kết quả (quyết định {decision})",
        "ans_oss_registry_own": (
            "một cửa không có hồ sơ {dossier}: quyết định {decision} do phần mềm quản lý tự lập"
        ),
        "ans_oss_result": "{service} hồ sơ {dossier}: kết quả {decision}, TrangThaiHoSo {state}",
        "ans_oss_sent": "đã gửi {service} hồ sơ {dossier}{step}",
        "err_oss_code": "{service}: một cửa trả lời error_code {code}",
        "err_oss_event": "hệ thống một cửa không nhận sự kiện {event}",
        "err_oss_login_config": "đăng nhập thất bại: chưa cấu hình username/password cho {system}",
        "err_oss_login_refused": "đăng nhập thất bại, kiểm tra username/password trong cấu hình",
        "err_oss_no_list": "{service}: câu trả lời không có danh sách kết quả",
        "err_oss_no_service": "yêu cầu đã dựng không nêu dịch vụ (lỗi của gateway)",
        "err_oss_no_token": "auth: câu trả lời không có mã phiên",
        "err_oss_not_json": "yêu cầu đã dựng không phải JSON (lỗi của gateway)",
        "err_oss_not_object": "{where}: HTTP {status} nhưng câu trả lời không phải đối tượng JSON",
        "err_oss_poll": "không đọc được danh sách hồ sơ từ một cửa",
        "err_oss_session": "{service}: phiên đăng nhập hết hạn ngay sau khi đăng nhập lại",
        "err_oss_unexpected": "{where}: một cửa trả lời HTTP {status} ngoài dự kiến",
        "err_oss_unknown_dossier": (
            "hệ thống một cửa không có hồ sơ {dossier}: không trả được quyết định {decision}"
        ),
        # -- the social-assistance pages (plugins/social_assistance/web.py: key without sa_) --
        "sa_accept": "Chấp nhận",
        "sa_alert_hint": "Cách xử lý",
        "sa_alert_line": "Kỳ {ky}: xã {code} {name} — {people} người, {amount} chưa được chi trả.",
        "sa_alert_reason": "Lý do",
        "sa_alert_retry": (
            "Hệ thống tự thử lại mỗi ngày đến hết ngày {last}; đã thử {n} lần, lần gần nhất {at}."
        ),
        "sa_alert_title": "Danh sách chưa lập hoặc chưa gửi — có người chưa được chi trả",
        "sa_downloads": "Tải về và in",
        "sa_from_month": "từ",
        "sa_list_print": "Bản in (A4)",
        "sa_list_xlsx": "Danh sách ký nhận (.xlsx)",
        "sa_names_role": "Danh sách có họ tên người nhận: cần quyền vận hành.",
        "sa_no_list": "Chưa lập danh sách cho xã và kỳ này.",
        "sa_print": "In",
        "sa_report_xlsx": "Báo cáo tháng (.xlsx)",
        "sa_send_again": "Lập và gửi lại kỳ {ky}",
        "sa_sent_flash": "Kỳ {ky}: đã gửi {sent} danh sách; {unpaid} xã chưa gửi được.",
        "sa_arrears_late": "Truy lĩnh do chậm",
        "sa_bad_accept": (
            "Cần chọn quyết định và số liệu được chấp nhận "
            "(phần mềm quản lý hoặc tính lại theo quy định)."
        ),
        "sa_bad_month": "Tháng phải có dạng YYYY-MM, từ {first} đến {last}.",
        "sa_bad_request": "Yêu cầu không hợp lệ",
        "sa_biendong": "Biến động trong tháng",
        "sa_candidates": "Đề nghị tạm dừng",
        "sa_category": "Đối tượng",
        "sa_chart_by_category": "Số tiền theo đối tượng",
        "sa_chart_by_commune": "Số tiền theo xã",
        "sa_chart_desc": "Biểu đồ cột ngang; số liệu đầy đủ trong bảng bên dưới.",
        "sa_chart_months": "Tổng chi trả 12 tháng gần nhất",
        "sa_chart_months_desc": "Biểu đồ cột, mỗi cột là tổng tiền các danh sách của một tháng.",
        "sa_chart_table": "Xem số liệu dạng bảng",
        "sa_commune": "Xã",
        "sa_days_decision": "Số ngày đến quyết định",
        "sa_days_payment": "Số ngày đến lần chi đầu",
        "sa_decision": "Quyết định",
        "sa_delivery": "Chuyển đi",
        "sa_dossier": "Hồ sơ",
        "sa_empty": "Chưa có dữ liệu.",
        "sa_flagged": "Lệch",
        "sa_held": "Quyết định chờ duyệt",
        "sa_lan_gui": "Lần gửi",
        "sa_month": "Kỳ chi trả",
        "sa_month_next": "Tháng sau",
        "sa_month_prev": "Tháng trước",
        "sa_months": "Các tháng chưa nhận",
        "sa_overdue": "Quá hạn",
        "sa_paid": "Đã chi",
        "sa_payments": "Chi trả",
        "sa_people": "Số người",
        "sa_person": "Đối tượng",
        "sa_registry": "Phần mềm quản lý",
        "sa_rules": "Tính lại theo quy định",
        "sa_show": "Xem",
        "sa_signed": "Ngày ký",
        "sa_state": "Trạng thái",
        "sa_state_conflict": "Lệch số liệu",
        "sa_state_held": "Chờ duyệt",
        "sa_timeliness": "Thời hạn giải quyết",
        "sa_total": "Tổng tiền",
        "sa_unpaid": "Chưa chi",
        "sa_yes": "Có",
    },
    "en": {
        "app_title": "Social-assistance dossier exchange gateway",
        "app_short": "Dossier gateway",
        "nav_overview": "Overview",
        "nav_log": "Delivery log",
        "nav_dossiers": "Dossiers",
        "nav_dead": "Dead letters",
        "nav_audit": "Audit log",
        "signin": "Sign in",
        "signout": "Sign out",
        "token": "Access token",
        "signin_help": "Enter the access token your administrator gave you.",
        "signin_failed": "The access token is not valid or was revoked.",
        "role_viewer": "Viewer",
        "role_operator": "Operator",
        "role_admin": "Administrator",
        "switch_lang": "Tiếng Việt",
        "node": "Node {node}",
        "masked_note": "Names and ID numbers are masked to protect personal data.",
        "overview_title": "System overview",
        "col_system": "System",
        "col_queue": "Queued",
        "col_in_flight": "In flight",
        "col_received_1h": "Received (1 h)",
        "col_delivered_1h": "Delivered (1 h)",
        "col_failed_1h": "Failed (1 h)",
        "col_p95": "p95 time",
        "col_breaker": "Circuit breaker",
        "col_dead": "Dead letters",
        "col_last_error": "Last error",
        "menu": "Menu",
        "breaker_closed": "Closed",
        "breaker_half_open": "Half-open",
        "breaker_open": "Open",
        "chart_title": "Last 24 hours",
        "chart_caption": "{system}: {delivered} delivered, {failed} failed",
        "chart_totals": "{delivered} delivered · {failed} failed",
        "chart_empty": "No attempts in the last 24 hours",
        "action_signin": "Signed in",
        "action_signout": "Signed out",
        "action_retry": "Retry",
        "legend_delivered": "Delivered",
        "legend_failed": "Failed",
        "no_systems": "No systems are configured.",
        "live_on": "Updates every {seconds} seconds",
        "live_paused": "Updates paused",
        "live_pause": "Pause updates",
        "live_resume": "Resume updates",
        "live_failed": "Could not update; will try again",
        "updated_at": "Updated {time}",
        "log_title": "Delivery log",
        "filter_system": "System",
        "filter_all": "All",
        "filter_outcome": "Outcome",
        "filter_dossier": "Dossier key",
        "filter_since": "From",
        "filter_until": "To",
        "filter_apply": "Filter",
        "filter_clear": "Clear filters",
        "export_csv": "Export CSV",
        "outcome_delivered": "Delivered",
        "outcome_retry_scheduled": "Retry scheduled",
        "outcome_dead": "Dead",
        "outcome_replayed": "Replayed",
        "outcome_refused": "Refused",
        "col_time": "Time",
        "col_delivery": "Delivery",
        "col_dossier": "Dossier",
        "col_route": "Source → destination",
        "col_attempt": "Attempt",
        "col_outcome": "Outcome",
        "col_http": "HTTP",
        "col_duration": "Duration",
        "col_error": "Result / response",
        "col_actor": "By",
        "page_older": "Older →",
        "page_newest": "← Newest",
        "empty_log": "No attempts match the filter.",
        "bad_time": "Not a valid time: {value}",
        "delivery_title": "Delivery #{id}",
        "f_status": "Status",
        "f_destination": "Destination",
        "f_source": "Source",
        "f_event": "Event",
        "f_route": "Route",
        "f_ref": "Reference",
        "f_attempts": "Attempts",
        "f_created": "Created",
        "f_next_attempt": "Next attempt",
        "f_deadline": "Deadline",
        "f_delivered_at": "Delivered at",
        "f_last_error": "Last error",
        "f_idempotency": "Idempotency key",
        "payload": "Payload (personal data masked)",
        "payload_revealed": "Payload in full (this look is recorded in the audit log)",
        "reveal": "Reveal in full (audited)",
        "attempts_title": "Attempts",
        "status_pending": "Pending",
        "status_in_flight": "In flight",
        "status_delivered": "Delivered",
        "status_dead": "Dead",
        "not_found": "Not found",
        "no_delivery": "There is no delivery #{id}.",
        "dossiers_title": "Dossier timeline",
        "dossier_help": (
            "Enter a dossier key (MaHoSo) to see every message and attempt "
            "across the three systems."
        ),
        "search": "Look up",
        "timeline_title": "Timeline of dossier {key}",
        "ev_received": "Received “{event}” from {source} (revision {revision})",
        "ev_attempt": "Attempt {attempt} to {destination}",
        "ev_answer_to": "(the answer to delivery #{id})",
        "pager": "Pages",
        "deliveries_now": "Deliveries now",
        "no_dossier": "The gateway knows no dossier with the key {key}.",
        "dead_title": "Dead letters",
        "dead_help": (
            "Deliveries that stopped on an error that cannot fix itself, or passed their deadline. "
            "Fix the cause, then press “Retry”."
        ),
        "col_reason": "Reason",
        "col_payload": "Payload",
        "col_updated": "Updated",
        "show_payload": "Show payload",
        "retry": "Retry",
        "retry_selected": "Retry selected",
        "select_all": "Select all",
        "select_row": "Select delivery #{id}",
        "dead_empty": "No dead letters.",
        "confirm_title": "Confirm retry",
        "confirm_text": (
            "These deliveries will be queued again. The action is logged under your name."
        ),
        "confirm_button": "Yes, retry",
        "cancel": "Cancel",
        "nothing_selected": "No deliveries were selected.",
        "retried_flash": "{count} deliveries queued again.",
        "skipped_flash": "{count} deliveries were no longer dead and were left alone.",
        "viewer_readonly": "You can view; retrying needs the operator role.",
        "audit_title": "Audit log",
        "col_action": "Action",
        "col_target": "Target",
        "col_detail": "Detail",
        "audit_empty": "No actions yet.",
        "forbidden_title": "Not allowed",
        "forbidden_text": "The “{role}” role may not do this.",
        "csrf_title": "Form not valid",
        "csrf_text": "The form expired or is not valid. Reload the page and try again.",
        "throttled_title": "Too many failed sign-ins",
        "throttled_text": "Too many failed attempts from this address. Try again in {seconds} s.",
        "signin_first": "Your session has ended. Please sign in again.",
        "back": "Back",
        "total": "Total",
        # -- what the systems, events and states are called (labels.py) --
        "plugin_district_registry": "Social-assistance registry",
        "plugin_http_json": "HTTP/JSON system",
        "plugin_one_stop_shop": "One-stop-shop desk",
        "plugin_post_office": "Post office",
        "plugin_social_assistance": "Monthly allowance payments",
        "event_decision.issued": "Allowance decision",
        "event_dossier.accepted": "Dossier accepted by the registry",
        "event_dossier.received": "Dossier filed at the one-stop-shop",
        "event_dossier.refused": "Dossier refused",
        "event_message.received": "Message",
        "event_payment.list": "Payment list",
        "event_payment.results": "Payment results",
        "event_payment.suspension_candidates": "Suspension candidates",
        "status_not_routed": "Not routed",
        "biendong_dieu_chinh": "Amount adjusted",
        "biendong_giam": "Stopped",
        "biendong_khong_doi": "Unchanged",
        "biendong_tam_dung": "Suspended",
        "biendong_tang": "New",
        "biendong_tiep_tuc": "Resumed",
        "commune_new": "new commune",
        "commune_old": "old code",
        "month_pattern": "LLLL yyyy",
        "date_pattern": "d MMM yyyy",
        "time_pattern": "yyyy-MM-dd HH:mm:ss",
        # -- the connectors' answers and errors, stored "vi / en" by both() (receipts first) --
        "ans_http": "HTTP {status} from the destination",
        "ans_no_reason": "no reason given",
        "ans_po_already": "this lanGui was already received",
        "ans_po_received": "the post office received {lines} lines",
        "ans_po_received_differs": "the post office received {lines} lines, not the {sent} sent",
        "ans_po_unreadable": "TiepNhan unreadable",
        "ans_sa_amount_differs": "flagged: amount differs from the line",
        "ans_sa_duplicate": "duplicate result line",
        "ans_sa_no_list": "kept; no list sent for {commune} {ky} (flagged)",
        "ans_sa_not_on_list": "flagged: not on the list",
        "ans_sa_paid": "paid",
        "ans_sa_unpaid": "unpaid",
        "ans_registry_has": "the registry already has revision {revision} (409)",
        "ans_registry_has_list": (
            "the registry already has the list for {ky}, commune {commune} (409)"
        ),
        "ans_registry_receipt": "receipt {number}",
        "ans_registry_refused": "refused by the registry (code {code})",
        "ans_registry_took_list": "request for {ky}, commune {commune} received: {lines} lines",
        "ans_unreadable": "accepted (HTTP {status}) but the answer is unreadable",
        "err_connection": "cannot connect",
        "err_not_destination": "system {system} is not a destination",
        "err_payload_object": "payload must be a JSON object",
        "err_po_event": "the post office takes no {event} events",
        "err_po_invalid": "invalid document (gateway bug)",
        "err_po_refused": "the payer refused the list",
        "err_registry_invalid": "registry refused the document as invalid (gateway bug)",
        "err_registry_list_refused": "registry refused the suspension list (code {code})",
        "err_sa_decision": "invalid decision",
        "err_sa_event": "social_assistance takes no {event} events",
        "err_sa_result": "invalid result",
        "err_redirect": (
            "HTTP {status} redirect to {location} not followed: the gateway never sends a "
            "document on to another address (check systems.{system}.base_url)"
        ),
        "err_timeout": "timeout",
        "err_unexpected": "unexpected error",
        "err_not_set": "systems.{system}.{key} is not set",
        "ans_oss_has_result": "{dossier}: already has the result (decision {decision})",
        "ans_oss_registry_own": (
            "{dossier}: no dossier at the one-stop-shop; decision {decision} is the registry's own"
        ),
        "ans_oss_result": "{service} {dossier}: result {decision}, TrangThaiHoSo {state}",
        "ans_oss_sent": "{service} {dossier}{step}",
        "err_oss_code": "{service}: error_code {code}",
        "err_oss_event": "the one-stop-shop connector cannot send event {event}",
        "err_oss_login_config": "login impossible: set systems.{system}.username and password",
        "err_oss_login_refused": "login refused: check username/password in the config",
        "err_oss_no_list": "{service}: the answer has no result list",
        "err_oss_no_service": "the rendered request names no service (a gateway bug)",
        "err_oss_no_token": "auth: the answer has no session token",
        "err_oss_not_json": "the rendered request is not JSON (a gateway bug)",
        "err_oss_not_object": "{where}: HTTP {status} but the answer is not a JSON object",
        "err_oss_poll": "poll",
        "err_oss_session": "{service}: the session expired again right after a fresh login",
        "err_oss_unexpected": "{where}: unexpected HTTP {status}",
        "err_oss_unknown_dossier": (
            "unknown dossier {dossier} at the one-stop-shop: cannot return decision {decision}"
        ),
        # -- the social-assistance pages (plugins/social_assistance/web.py: key without sa_) --
        "sa_accept": "Accept",
        "sa_alert_hint": "What to do",
        "sa_alert_line": "Month {ky}: commune {code} {name} — {people} people, {amount} unpaid.",
        "sa_alert_reason": "Why",
        "sa_alert_retry": (
            "The payment-day job retries every day until {last}; tried {n} times, last at {at}."
        ),
        "sa_alert_title": "Lists not built or not sent — people left unpaid",
        "sa_downloads": "Download and print",
        "sa_from_month": "from",
        "sa_list_print": "Print view (A4)",
        "sa_list_xlsx": "Signing list (.xlsx)",
        "sa_names_role": "Lists name the payees: the operator role is needed.",
        "sa_no_list": "No list was built for this commune and month.",
        "sa_print": "Print",
        "sa_report_xlsx": "Monthly report (.xlsx)",
        "sa_send_again": "Build and send month {ky} again",
        "sa_sent_flash": "Month {ky}: {sent} lists sent; {unpaid} communes still not sent.",
        "sa_arrears_late": "Arrears from lateness",
        "sa_bad_accept": (
            "Choose a decision and the figure to accept (the registry's or the rules')."
        ),
        "sa_bad_month": "The month must be YYYY-MM, from {first} to {last}.",
        "sa_bad_request": "Bad request",
        "sa_biendong": "Changes this month",
        "sa_candidates": "Suspension candidates",
        "sa_category": "Category",
        "sa_chart_by_category": "Money by category",
        "sa_chart_by_commune": "Money by commune",
        "sa_chart_desc": "Horizontal bar chart; the full figures are in the table below.",
        "sa_chart_months": "Totals of the last 12 months",
        "sa_chart_months_desc": "Bar chart, one bar per month: the total of that month's lists.",
        "sa_chart_table": "Show the figures as a table",
        "sa_commune": "Commune",
        "sa_days_decision": "Days to decision",
        "sa_days_payment": "Days to first payment",
        "sa_decision": "Decision",
        "sa_delivery": "Delivery",
        "sa_dossier": "Dossier",
        "sa_empty": "Nothing yet.",
        "sa_flagged": "Flagged",
        "sa_held": "Held decisions",
        "sa_lan_gui": "Sending",
        "sa_month": "Payment month",
        "sa_month_next": "Next month",
        "sa_month_prev": "Previous month",
        "sa_months": "Unpaid months",
        "sa_overdue": "Overdue",
        "sa_paid": "Paid",
        "sa_payments": "Payments",
        "sa_people": "People",
        "sa_person": "Person",
        "sa_registry": "Registry",
        "sa_rules": "Recomputed by the rules",
        "sa_show": "Show",
        "sa_signed": "Signed",
        "sa_state": "State",
        "sa_state_conflict": "Figures differ",
        "sa_state_held": "Held",
        "sa_timeliness": "Timeliness",
        "sa_total": "Total",
        "sa_unpaid": "Unpaid",
        "sa_yes": "Yes",
    },
}

BABEL_LOCALES = {"vi": "vi_VN", "en": "en_GB"}


def translate(lang: str, key: str, /, **fields: Any) -> str:
    """The string ``key`` in ``lang``; a missing key shows itself (never a crash)."""
    text = MESSAGES.get(lang, MESSAGES[DEFAULT_LANG]).get(key) or MESSAGES[DEFAULT_LANG].get(
        key, key
    )
    return text.format(**fields) if fields else text


def both(key: str, /, detail: str | None = None, **fields: Any) -> str:
    """A text stored once for every reader (a connector's error or a receipt's detail, kept
    in the delivery log, the logs and the exports): ``"vi / en"``, then ``": detail"`` when
    the other side said something (its own words, in its own language)."""
    text = f"{translate('vi', key, **fields)} / {translate('en', key, **fields)}"
    return f"{text}: {detail}" if detail else text


def has(key: str) -> bool:
    """Whether the catalogue has ``key`` (labels fall back to the code when it has not)."""
    return key in MESSAGES[DEFAULT_LANG]


def choose_lang(request: web.Request) -> tuple[str, bool]:
    """The request's language and whether to remember it in the cookie."""
    asked = request.query.get("lang")
    if asked in LANGS:
        return asked, request.cookies.get(LANG_COOKIE) != asked
    cookie = request.cookies.get(LANG_COOKIE)
    return (cookie if cookie in LANGS else DEFAULT_LANG), False


def _locale(lang: str) -> str:
    return BABEL_LOCALES.get(lang, BABEL_LOCALES[DEFAULT_LANG])


def format_time(epoch: float | None, lang: str) -> str:
    """A time of the store (UTC epoch) as shown to an office in Vietnam (CLDR via Babel)."""
    if epoch is None:
        return ""
    return babel_dates.format_datetime(
        datetime.fromtimestamp(epoch, VN_TZ), translate(lang, "time_pattern"), locale=_locale(lang)
    )


def format_number(value: int | float | None, lang: str) -> str:
    """A count or amount with the language's grouping (vi ``1.234.567``, en ``1,234,567``)."""
    if value is None:
        return "–"
    return babel_numbers.format_decimal(value, locale=_locale(lang))


def format_money(value: int | None, lang: str) -> str:
    """Whole VND (vi ``1.234.567 ₫``, en ``₫1,234,567``)."""
    if value is None:
        return "–"
    return babel_numbers.format_currency(value, "VND", locale=_locale(lang), currency_digits=True)


def format_duration(ms: float | None, lang: str) -> str:
    """An attempt's duration: ``48 ms`` under a second, else seconds (vi ``1,2 s``)."""
    if ms is None:
        return "–"
    if ms < 1000:
        return f"{babel_numbers.format_decimal(round(ms), locale=_locale(lang))} ms"
    return f"{babel_numbers.format_decimal(round(ms / 1000, 1), locale=_locale(lang))} s"


def format_compact(value: int, lang: str) -> str:
    """A large amount in short (vi ``1,6 Tr``, en ``1.6M``): a chart's bar label (CLDR)."""
    return babel_numbers.format_compact_decimal(value, locale=_locale(lang), fraction_digits=1)


def format_date(value: date | str | None, lang: str) -> str:
    """A calendar day (vi ``dd/mm/yyyy``); an ISO string is read first, anything else shown."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return value
    else:
        day = value
    return babel_dates.format_date(day, translate(lang, "date_pattern"), locale=_locale(lang))


def format_month(value: str | None, lang: str) -> str:
    """A month ``YYYY-MM`` as an office writes it (vi ``Tháng 01/2027``, en ``January 2027``)."""
    if not value:
        return ""
    try:
        year, month = (int(part) for part in str(value).split("-"))
        day = date(year, month, 1)
    except ValueError:
        return str(value)
    return babel_dates.format_date(day, translate(lang, "month_pattern"), locale=_locale(lang))
