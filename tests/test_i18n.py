from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from aiogram.utils.i18n import I18n

from client_bot.i18n import LOCALES, build_i18n

ROOT = Path(__file__).resolve().parents[1]


def test_catalogs_are_complete_and_compiled():
    """Every message id in the code has a Russian translation and the .mo files are fresh."""
    result = subprocess.run(
        [sys.executable, "-m", "scripts.i18n", "check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_both_locales_load_and_russian_is_the_default():
    i18n: I18n = build_i18n()
    assert set(LOCALES) <= set(i18n.available_locales)
    with i18n.context(), i18n.use_locale("ru"):
        assert i18n.gettext("📅 Book") == "📅 Записаться"
    with i18n.context(), i18n.use_locale("en"):
        assert i18n.gettext("📅 Book") == "📅 Book"
