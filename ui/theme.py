"""Look and feel for a touch kiosk used by people of every age: large, plain, high contrast.

Figures from MIIT's 适老化 guidance (domain.md §2): text ≥ 18 pt (nothing under 14 pt), touch
targets ≥ 60×60 px, contrast ≥ 4.5:1, colour never the only signal.
"""

from __future__ import annotations

from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QApplication

MIN_TARGET_PX = 60
MIN_TEXT_PT = 14

# Colours chosen for ≥ 4.5:1 contrast on their backgrounds.
INK = "#111827"  # body text on white: 17.7:1
MUTED = "#374151"  # secondary text on white: 10.3:1
PAPER = "#FFFFFF"
SURFACE = "#F3F4F6"
PRIMARY = "#0B5394"  # white on it: 7.9:1
PRIMARY_DARK = "#073763"
DANGER = "#9B1C1C"  # white on it / it on white: 8.0:1
OK = "#14532D"  # on white: 9.6:1
FOCUS = "#B45309"


def apply_theme(app: QApplication, family: str, base_pt: int) -> str:
    """Set the CJK font family explicitly and the style sheet; returns the family in use."""
    families = set(QFontDatabase.families())
    chosen = (
        family
        if family in families
        else next(
            (f for f in ("Noto Sans CJK SC", "Noto Sans SC", "WenQuanYi Zen Hei") if f in families),
            family,
        )
    )
    font = QFont(chosen)
    font.setPointSize(base_pt)
    app.setFont(font)
    sheet = style_sheet(chosen, base_pt)
    if app.styleSheet() != sheet:  # setting it again re-polishes every widget in the process
        app.setStyleSheet(sheet)
    return chosen


def style_sheet(family: str, base_pt: int) -> str:
    small = max(MIN_TEXT_PT, base_pt - 4)
    return f"""
    QWidget {{ font-family: "{family}"; font-size: {base_pt}pt; color: {INK}; }}
    QMainWindow, QStackedWidget, #screen {{ background: {PAPER}; }}
    #topbar {{ background: {PRIMARY}; }}
    #topbar QLabel {{ color: white; font-size: {base_pt + 2}pt; font-weight: bold; }}
    #topbar QLabel#network {{ font-size: {base_pt - 2}pt; font-weight: normal;
                             padding: 4px 12px; margin-right: 12px; border-radius: 8px; }}
    #topbar QLabel#network[offline="true"] {{ background: #FFF3CD; color: #5C4400; }}
    #topbar QPushButton {{ background: white; color: {PRIMARY}; border-radius: 8px;
        min-height: {MIN_TARGET_PX}px; min-width: 120px; padding: 0 18px; font-weight: bold; }}
    QPushButton {{ min-height: {MIN_TARGET_PX}px; min-width: {MIN_TARGET_PX}px;
        padding: 0 24px; border-radius: 10px; border: 2px solid {PRIMARY};
        background: white; color: {PRIMARY}; font-weight: bold; }}
    QPushButton:pressed {{ background: {SURFACE}; }}
    QPushButton:focus {{ border: 3px solid {FOCUS}; }}
    QPushButton[primary="true"] {{ background: {PRIMARY}; color: white; }}
    QPushButton[primary="true"]:pressed {{ background: {PRIMARY_DARK}; }}
    QPushButton[danger="true"] {{ border-color: {DANGER}; color: {DANGER}; }}
    QPushButton:disabled {{ border-color: #9CA3AF; color: #4B5563; background: {SURFACE}; }}
    QPushButton:checked {{ background: {PRIMARY}; color: white; }}
    QPushButton[chosen="true"]:disabled {{ background: {PRIMARY}; color: white;
        border-color: {PRIMARY}; }}
    QLineEdit, QComboBox, QDateEdit, QSpinBox {{ min-height: {MIN_TARGET_PX}px; padding: 0 12px;
        border: 2px solid {MUTED}; border-radius: 8px; background: white; }}
    QLineEdit:focus {{ border: 3px solid {FOCUS}; }}
    QLineEdit:read-only {{ background: {SURFACE}; color: {INK}; }}
    QCheckBox {{ min-height: {MIN_TARGET_PX}px; spacing: 16px; }}
    QCheckBox::indicator {{ width: 44px; height: 44px; }}
    QRadioButton {{ min-height: {MIN_TARGET_PX}px; spacing: 12px; }}
    QRadioButton::indicator {{ width: 36px; height: 36px; }}
    QLabel[role="title"] {{ font-size: {base_pt + 10}pt; font-weight: bold; }}
    QLabel[role="subtitle"] {{ font-size: {base_pt + 4}pt; font-weight: bold; }}
    QLabel[role="muted"] {{ color: {MUTED}; font-size: {small}pt; }}
    QLabel[role="error"] {{ color: {DANGER}; font-weight: bold; }}
    QLabel[role="ok"] {{ color: {OK}; font-weight: bold; }}
    QScrollArea {{ border: none; background: {PAPER}; }}
    QFrame[role="card"] {{ background: {SURFACE}; border-radius: 12px; }}
    QScrollBar:vertical {{ width: 28px; background: {SURFACE}; margin: 0; }}
    QScrollBar::handle:vertical {{ background: {MUTED}; min-height: 80px; border-radius: 14px; }}
    QScrollBar::add-line:vertical, QScrollBar::sub-line:vertical {{ height: 0; }}
    QScrollBar::add-page:vertical, QScrollBar::sub-page:vertical {{ background: none; }}
    #countdown {{ background: rgba(17, 24, 39, 0.88); }}
    #countdown QLabel {{ color: white; font-size: {base_pt + 8}pt; font-weight: bold; }}
    #countdown QPushButton {{ min-width: 480px; min-height: 120px; font-size: {base_pt + 6}pt; }}
    """
