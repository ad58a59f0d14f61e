"""Staff mode's queued signals: worker and device threads hand results to the GUI thread here."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from kiosk.ports import SmartCardEvent


class StaffBridge(QObject):
    """Emit from any thread; connected slots run on the GUI thread (AutoConnection queues)."""

    smart_card_event = Signal(object)  # a kiosk.ports.SmartCardEvent from the PC/SC threads
    login_done = Signal(object)  # a kiosk.staff.StaffSession or LoginRefused
    check_done = Signal(object)  # a ui.diagnostics.Check, as each probe finishes
    report_done = Signal(object)  # a ui.diagnostics.Report, or an Exception
    task_done = Signal(object)  # a ui.staff.desk.TaskResult (printing, bundle, licences)

    def on_smart_card_event(self, event: SmartCardEvent) -> None:
        """A SmartCardListener: safe to call from the reader's threads."""
        self.smart_card_event.emit(event)
