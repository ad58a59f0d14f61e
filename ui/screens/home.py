"""The first screen: pick a 一件事 by audience, life-event category or by typing its name, or
check on earlier applications (办件进度查询)."""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from kiosk.catalog import Audience, Catalog, Thing
from kiosk.flow import Session, Step
from kiosk.i18n import Lang
from ui.context import UiContext
from ui.screens.base import Screen
from ui.screens.words import ReflowGrid, label, scroll_page, set_text, tall, w

AUDIENCES: tuple[Audience, ...] = ("personal", "business")
ALL = "all"
TILE_MIN_WIDTH = 420  # two tiles across a portrait screen, four across a landscape one
TILE_MIN_HEIGHT = 150


class ThingTile(QPushButton):
    """A big button for one thing: its name, how many services it bundles, the promised time."""

    def __init__(self, thing_id: str) -> None:
        super().__init__()
        self.setObjectName(f"thing_{thing_id}")
        tall(self, TILE_MIN_HEIGHT)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        box = QVBoxLayout(self)
        box.setContentsMargins(24, 16, 24, 16)
        box.setSpacing(6)
        self.name = label(role="subtitle")
        self.detail = label(role="muted")
        for part in (self.name, self.detail):
            # The whole tile is the target: a tap on its words must reach the button.
            part.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            box.addWidget(part)
        box.addStretch(1)

    def show_thing(self, thing: Thing, lang: Lang) -> None:
        name = thing.name.get(lang)
        detail = (
            w("tile_services", lang, n=len(thing.services))
            + "\n"
            + w("tile_promise", lang, promise=thing.promise.describe(lang))
        )
        set_text(self.name, name)
        set_text(self.detail, detail)
        # Screen readers and tests read the button's own text; the labels only draw it.
        self.setAccessibleName(f"{name}. {detail}")

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        layout = self.layout()
        return max(TILE_MIN_HEIGHT, layout.totalHeightForWidth(width) if layout else 0)

    def sizeHint(self) -> QSize:
        return QSize(TILE_MIN_WIDTH, self.heightForWidth(TILE_MIN_WIDTH))

    def minimumSizeHint(self) -> QSize:
        return QSize(TILE_MIN_WIDTH // 2, TILE_MIN_HEIGHT)


class HomeScreen(Screen):
    """Browse and search the catalog; a tap on a tile chooses that thing."""

    step = Step.HOME

    def __init__(self, ctx: UiContext) -> None:
        super().__init__(ctx)
        self._catalog: Catalog | None = None
        self._tiles: dict[str, ThingTile] = {}
        self._categories: dict[str, QPushButton] = {}

        page = QVBoxLayout(self)
        page.setContentsMargins(32, 32, 32, 0)
        page.setSpacing(20)
        self._welcome = label(role="title")
        self._hint = label(role="muted")
        page.addWidget(self._welcome)
        page.addWidget(self._hint)

        # Coming back to ask "how is my application doing?" is the second reason to be here.
        progress_row = QHBoxLayout()
        progress_row.setSpacing(16)
        self._progress = QPushButton()
        self._progress.setObjectName("check_progress")
        tall(self._progress, 90)
        self._progress.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._progress.clicked.connect(self._on_progress_clicked)
        progress_row.addWidget(self._progress, 1)
        self._progress_hint = label(role="muted")
        progress_row.addWidget(self._progress_hint, 1)
        page.addLayout(progress_row)

        audience_row = QHBoxLayout()
        audience_row.setSpacing(16)
        self._audience_group = QButtonGroup(self)
        self._audience: dict[str, QPushButton] = {}
        for key in AUDIENCES:
            button = QPushButton()
            button.setObjectName(f"audience_{key}")
            button.setCheckable(True)
            tall(button, 80)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            self._audience_group.addButton(button)
            button.clicked.connect(self._on_filter_changed)
            self._audience[key] = button
            audience_row.addWidget(button)
        self._audience["personal"].setChecked(True)
        page.addLayout(audience_row)

        self._category_grid = ReflowGrid(
            min_item_width=200, max_columns=6, spacing=12, fit_widest=True
        )
        self._category_group = QButtonGroup(self)
        page.addWidget(self._category_grid)

        search_row = QHBoxLayout()
        search_row.setSpacing(16)
        self._search_label = label(wrap=False)
        self._search = QLineEdit()
        self._search.setObjectName("search")
        self._search.setClearButtonEnabled(True)
        self._search.textChanged.connect(self._on_filter_changed)
        search_row.addWidget(self._search_label)
        search_row.addWidget(self._search, 1)
        page.addLayout(search_row)
        self._searching = label(role="muted", name="search_scope")
        page.addWidget(self._searching)

        # Only the tiles scroll: the filters and the search box stay in reach.
        holder = QWidget()
        tiles = scroll_page(holder, max_width=None, margins=(0, 8, 0, 24))
        self._grid = ReflowGrid(min_item_width=TILE_MIN_WIDTH, max_columns=4)
        self._no_match = label(role="subtitle", name="no_match")
        tiles.addWidget(self._grid)
        tiles.addWidget(self._no_match)
        tiles.addStretch(1)
        page.addWidget(holder, 1)

    # Rendering ------------------------------------------------------------------------------

    def render(self, session: Session) -> None:
        lang = session.lang
        catalog = self.ctx.flow.backend.catalog
        if catalog is not self._catalog:
            self._build(catalog)
        set_text(self._welcome, w("home_welcome", lang))
        set_text(self._hint, w("home_hint", lang))
        self._progress.setText(w("check_progress", lang))
        set_text(self._progress_hint, w("check_progress_hint", lang))
        for key, button in self._audience.items():
            button.setText(w(f"audience_{key}", lang))
        self._categories[ALL].setText(w("category_all", lang))
        for key, button in self._categories.items():
            if key != ALL:
                button.setText(catalog.categories[key].get(lang))
        set_text(self._search_label, w("search_label", lang))
        self._search.setPlaceholderText(w("search_placeholder", lang))
        set_text(self._no_match, w("no_match", lang))
        set_text(self._searching, w("search_everywhere", lang))
        for thing in catalog.things:
            self._tiles[thing.id].show_thing(thing, lang)
        self._refresh()

    def _build(self, catalog: Catalog) -> None:
        """(Re)create the category buttons and tiles for a catalog (a new one may be adopted)."""
        self._catalog = catalog
        for button in self._categories.values():
            self._category_group.removeButton(button)
            button.deleteLater()
        for tile in self._tiles.values():
            tile.deleteLater()
        self._categories = {}
        for key in (ALL, *catalog.categories):
            button = QPushButton()
            button.setObjectName(f"category_{key}")
            button.setCheckable(True)
            button.clicked.connect(self._on_filter_changed)
            self._category_group.addButton(button)
            self._categories[key] = button
        self._categories[ALL].setChecked(True)
        self._tiles = {}
        for thing in catalog.things:
            tile = ThingTile(thing.id)
            tile.clicked.connect(partial(self._on_tile_clicked, thing.id))
            self._tiles[thing.id] = tile

    def _audience_choice(self) -> Audience:
        return "business" if self._audience["business"].isChecked() else "personal"

    def _category_choice(self) -> str | None:
        for key, button in self._categories.items():
            if button.isChecked():
                return None if key == ALL else key
        return None

    def _refresh(self) -> None:
        catalog = self._catalog
        if catalog is None:
            return
        audience = self._audience_choice()
        # Only offer categories that hold something for this audience.
        offered = {t.category for t in catalog.browse(audience=audience)}
        if self._category_choice() not in offered | {None}:
            self._categories[ALL].setChecked(True)
        self._category_grid.set_items(
            [b for k, b in self._categories.items() if k == ALL or k in offered]
        )
        query = self._search.text().strip()
        if query:
            # Someone who types a name wants that thing, whatever filter happens to be on.
            found = catalog.browse(query=query)
        else:
            found = catalog.browse(audience=audience, category=self._category_choice())
        self._grid.set_items([self._tiles[t.id] for t in found])
        self._grid.setVisible(bool(found))
        self._no_match.setVisible(not found)
        self._searching.setVisible(bool(query))

    # Events ---------------------------------------------------------------------------------

    def _on_filter_changed(self) -> None:
        self._refresh()

    def _on_progress_clicked(self) -> None:
        self.ctx.flow.check_progress()

    def _on_tile_clicked(self, thing_id: str) -> None:
        self.ctx.flow.choose_thing(thing_id)

    def clear(self) -> None:
        self._search.blockSignals(True)
        self._search.clear()
        self._search.blockSignals(False)
        self._audience["personal"].setChecked(True)
        if ALL in self._categories:
            self._categories[ALL].setChecked(True)
        self._refresh()
