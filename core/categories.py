"""The business categories an owner picks while buying (the sales bot's form), carried to the
tenant (`POST /api/v1/tenants` `category`, control.tenants.category, the client contract's
BUSINESS_CATEGORY) and seeding the new bot's services, hours and classes
(client_bot/booking/templates.py). One list for all three."""

from __future__ import annotations

from typing import Literal, get_args

Category = Literal["beauty", "health", "fitness", "education", "auto", "other"]
CATEGORIES: tuple[str, ...] = get_args(Category)
