"""Shipping labels as real PDF documents (4 x 6 inch, the thermal-printer size carriers accept)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fpdf import FPDF

LABEL_SIZE_MM = (101.6, 152.4)


@dataclass(frozen=True)
class LabelData:
    shipment_number: str
    order_number: str
    carrier: str
    service_level: str
    tracking_number: str
    ship_from: list[str]
    ship_to: list[str]
    weight_kg: str
    packages: int
    dispatched_at: datetime


def _latin1(text: str) -> str:
    """The core PDF fonts are Latin-1: keep what fits, replace the rest, never fail on a name."""
    return text.encode("latin-1", "replace").decode("latin-1")


def render_label(data: LabelData, directory: Path) -> Path:
    """Write `<shipment>.pdf` into `directory` (atomically) and return its path."""
    pdf = FPDF(unit="mm", format=LABEL_SIZE_MM)
    pdf.set_title(f"Label {data.shipment_number}")
    pdf.set_creator("StoreOM")
    pdf.set_creation_date(data.dispatched_at)
    pdf.set_auto_page_break(False)
    pdf.set_margins(5, 5, 5)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 8, _latin1(f"{data.carrier.upper()}  {data.service_level.upper()}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    pdf.cell(0, 4, "FROM:", new_x="LMARGIN", new_y="NEXT")
    for line in data.ship_from:
        pdf.cell(0, 4, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(0, 5, "SHIP TO:", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 12)
    for line in data.ship_to:
        pdf.cell(0, 6, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(0, 5, _latin1(f"Order {data.order_number}   Shipment {data.shipment_number}"), new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 5, f"Weight {data.weight_kg} kg   Packages {data.packages}   {data.dispatched_at:%Y-%m-%d}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.code39(f"*{data.tracking_number}*", x=6, y=pdf.get_y(), w=0.35, h=22)
    pdf.set_y(pdf.get_y() + 25)
    pdf.set_font("Courier", "B", 12)
    pdf.cell(0, 6, f"TRACKING # {data.tracking_number}", new_x="LMARGIN", new_y="NEXT")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{data.shipment_number}.pdf"
    tmp = path.with_suffix(".pdf.tmp")
    pdf.output(str(tmp))
    os.replace(tmp, path)
    return path
