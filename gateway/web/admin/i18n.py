"""Every string of the dashboard, in Vietnamese (the default) and English.

The language is ``?lang=vi|en`` (remembered in the ``lang`` cookie), else the cookie, else
Vietnamese. Placeholders are ``str.format`` fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

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
        "auto_refresh": "Trang tự làm mới sau mỗi 30 giây.",
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
        "col_time": "Thời gian",
        "col_delivery": "Lượt gửi",
        "col_dossier": "Mã hồ sơ",
        "col_route": "Nguồn → nơi nhận",
        "col_attempt": "Lần",
        "col_outcome": "Kết quả",
        "col_http": "HTTP",
        "col_duration": "Thời lượng",
        "col_error": "Lỗi",
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
        "deliveries_now": "Trạng thái các lượt gửi",
        "no_dossier": "Cổng chưa nhận hồ sơ nào có mã {key}.",
        "dead_title": "Gửi lỗi (thư chết)",
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
        "auto_refresh": "This page refreshes every 30 seconds.",
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
        "col_time": "Time",
        "col_delivery": "Delivery",
        "col_dossier": "Dossier",
        "col_route": "Source → destination",
        "col_attempt": "Attempt",
        "col_outcome": "Outcome",
        "col_http": "HTTP",
        "col_duration": "Duration",
        "col_error": "Error",
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
    },
}

_TIME_FORMATS = {"vi": "%d/%m/%Y %H:%M:%S", "en": "%Y-%m-%d %H:%M:%S"}


def translate(lang: str, key: str, /, **fields: Any) -> str:
    """The string ``key`` in ``lang``; a missing key shows itself (never a crash)."""
    text = MESSAGES.get(lang, MESSAGES[DEFAULT_LANG]).get(key) or MESSAGES[DEFAULT_LANG].get(
        key, key
    )
    return text.format(**fields) if fields else text


def choose_lang(request: web.Request) -> tuple[str, bool]:
    """The request's language and whether to remember it in the cookie."""
    asked = request.query.get("lang")
    if asked in LANGS:
        return asked, request.cookies.get(LANG_COOKIE) != asked
    cookie = request.cookies.get(LANG_COOKIE)
    return (cookie if cookie in LANGS else DEFAULT_LANG), False


def format_time(epoch: float | None, lang: str) -> str:
    """A time of the store (UTC epoch) as shown to an office in Vietnam."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, VN_TZ).strftime(
        _TIME_FORMATS.get(lang, _TIME_FORMATS["vi"])
    )
