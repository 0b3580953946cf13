"""The one-stop-shop connector's own keys in ``[systems.motcua]`` (unknown keys are refused)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class OneStopShopOptions(BaseModel):
    """Keys of ``[systems.X]`` that belong to the one-stop-shop connector.

    :param username: adapter login (``POST {base_url}/auth``).
    :param password: adapter password; use ``{"$env": "..."}`` in shipped files.
    :param madonvi: the unit code sent with every adapter call (required to send).
    :param poll: fetch dossiers from ``{base_url}{poll_path}`` instead of waiting for pushes.
    :param poll_path: the path polled with ``?tu=<cursor>``.
    :param nguoi_xu_ly: NguoiXuLy (who processed) written on progress steps and results.
    :param chuc_danh: ChucDanh (their job title).
    :param phong_ban_xu_ly: PhongBanXuLy (the processing office).
    :param processing_days: working days from a progress step to NgayKetThucTheoQuyDinh when
        the message does not carry the dossier's appointment date.
    :param result_status: TrangThaiHoSo of a dossier whose decision is sent back: ``"10"``
        (result returned, the default: the decision is an electronic document and the
        one-stop-shop hands out the link) or ``"9"`` (processed: the desk records the hand-over
        itself, NgayTra is left empty).
    :param result_url: DuongDanTepTinKetQua of a decision; ``{so}`` is replaced by the
        URL-quoted decision number (empty: no link).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str = ""
    password: SecretStr | None = None
    madonvi: str = ""
    poll: bool = False
    poll_path: str = "/ho-so"
    nguoi_xu_ly: str = "Cán bộ Phòng Lao động - Thương binh và Xã hội"
    chuc_danh: str = "Chuyên viên"
    phong_ban_xu_ly: str = "Phòng Lao động - Thương binh và Xã hội"
    processing_days: int = Field(default=15, ge=0)
    result_status: Literal["9", "10"] = "10"
    result_url: str = ""
