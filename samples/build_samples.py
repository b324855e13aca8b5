"""Generate the bundled Kestrel Harbor Logistics sample document set.

Kestrel Harbor Logistics is a fictional company; every fact below was written for Citewise.
The quick start ingests these files into tenant ``demo`` and the tests ask questions about
them (``samples/questions.json``). Output is byte-identical on every run: document metadata
carries fixed dates, the PDF is written in ReportLab's invariant mode and every OOXML zip
(DOCX, PPTX, XLSX) is rewritten with fixed member timestamps.

Usage::

    .venv/bin/python samples/build_samples.py [--out samples/kestrel]

Needs python-docx, python-pptx, openpyxl (installed with unstructured's extras) and
reportlab (pure Python).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import random
import re
import zipfile
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from docx import Document
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.shared import Pt
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from pptx import Presentation
from pptx.util import Pt as PptPt
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    ListFlowable,
    ListItem,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

COMPANY = "Kestrel Harbor Logistics"
AUTHOR = "Kestrel Harbor Logistics"
FIXED_TIME = dt.datetime(2026, 10, 20, 9, 0, 0)
ZIP_TIME = (2026, 10, 20, 9, 0, 0)
DEFAULT_OUT = Path(__file__).resolve().parent / "kestrel"

# --------------------------------------------------------------------------------------------
# 1. Employee handbook (Markdown)
# --------------------------------------------------------------------------------------------

HANDBOOK_MD = """\
# Kestrel Harbor Logistics Employee Handbook

Version 2026.2. Effective 1 July 2026. Owner: People Operations (people@kestrelharbor.example).

## 1. Welcome

Kestrel Harbor Logistics ("Kestrel Harbor", "KHL") has been moving freight out of Port Alder
since 2009. We are a freight forwarder first and a software company second: our customers trust
us with their cargo, and many of them also run their supply chains on HarborTrack, our
shipment-tracking platform. This handbook explains how we work together. It applies to every
employee in every office unless a local addendum, published on the intranet for that office,
says otherwise. Where local law gives you more, local law wins.

If anything here is unclear, ask your manager or write to People Operations.

## 2. Working hours

### 2.1 Standard week

A full-time week at Kestrel Harbor is 37.5 hours, normally Monday to Friday. Part-time
schedules are agreed individually and recorded in your contract.

### 2.2 Core hours and flexible time

Everyone in a hybrid or office role is expected to be reachable during core hours, 10:00 to
15:00 local time. Outside core hours you may start and finish when it suits you, as long as your
working time falls inside the flexible window of 07:00 to 19:00 and your team's coverage plan is
met. Customer operations and warehouse teams work to published rosters instead of core hours.

### 2.3 Overtime

Hourly employees must get their manager's approval before working overtime. Approved overtime
is paid at 1.5 times the base rate; hours beyond 12 in a single day are paid at 2 times the base
rate. Salaried employees do not receive overtime pay but may take time off in lieu, up to 3 days
per quarter, by agreement with their manager.

### 2.4 Peak season

Between 15 November and 10 January, warehouse and customer-operations staff may be rostered on
Saturdays. Nobody is rostered on more than 2 Saturdays per calendar month, and each Saturday
worked earns a paid day off to be taken before the end of February.

### 2.5 Breaks

Shifts longer than 6 hours include an unpaid meal break of 30 minutes. Dock and yard staff also
take a paid 10-minute rest break every 2 hours.

## 3. Leave

### 3.1 Annual leave

Full-time employees receive 23 days of paid annual leave per year during their first four years
of service. From the start of the fifth year of service the entitlement rises to 27 days. Public
holidays are in addition and follow the calendar of your office. Requests for more than 3
consecutive days should be made at least 10 working days in advance.

You may carry over up to 5 unused days into the next year. Carried-over days must be used by
31 March; after that they lapse.

### 3.2 Sick leave

You have 10 paid sick days per calendar year. Tell your manager as early as possible on the
first day of absence. A doctor's note is required from the fourth consecutive day of sickness.

### 3.3 Parental leave

After 6 months of service, the primary caregiver of a newborn or newly adopted child receives
18 weeks of parental leave at full pay. The secondary caregiver receives 6 weeks at full pay.
Parental leave may be taken in up to three blocks within 12 months of the birth or adoption.

### 3.4 Bereavement leave

You may take up to 5 paid days after the death of an immediate family member and up to 2 paid
days for an extended family member.

### 3.5 Tide Days

Every employee receives 2 paid Tide Days per year to volunteer for a registered charity or
community project. Tide Days do not carry over.

### 3.6 Sabbatical

After 7 years of continuous service you may request an unpaid sabbatical of up to 8 weeks.
Sabbaticals need the approval of your department head at least 3 months before the start date.

## 4. Remote and hybrid work

### 4.1 Eligibility

Roles are classified as on-site, hybrid or remote. Hybrid employees may work remotely up to 3
days per week. On-site roles, such as dock, yard, fleet and warehouse roles, are not eligible for
remote work.

### 4.2 Anchor days

Each team agrees one anchor day per week when everyone is in the office. At the Port Alder
headquarters the company-wide anchor day is Tuesday, when team rituals and office socials
are scheduled.

### 4.3 Fully remote roles

A fully remote arrangement needs written approval from the vice president of your function and
is reviewed every 12 months.

### 4.4 Working from abroad

You may work from a country other than the one in your contract for up to 20 working days per
calendar year. Submit the request to People Operations at least 15 days before you travel so
that tax and immigration can be checked. Working from abroad is never allowed from a country
under trade sanctions.

### 4.5 Home office support

Hybrid and remote employees receive a one-time home office stipend of $650 (or the local
equivalent) for a desk, chair or monitor, and an internet allowance of $45 per month paid through
payroll.

### 4.6 Security when working remotely

Work only on a company laptop, connect through the company VPN, and never leave devices
unattended in public places. The Information Security Policy (ISP-004) applies in full when you
work outside the office.

## 5. Benefits

### 5.1 Health coverage

Medical, dental and vision coverage is offered in every country where we employ people. Plan
details, contributions and enrollment dates are communicated by People Operations during the
annual open enrollment period.

### 5.2 Retirement savings

Kestrel Harbor matches 100% of your retirement plan contributions up to 5% of your base salary.
Company contributions vest immediately.

### 5.3 Learning budget

Each employee has a learning budget of $1,600 per calendar year for courses, certifications,
conferences and language classes. Unused budget does not roll over.

### 5.4 Wellness allowance

A wellness allowance of $40 per month can be claimed for sports, fitness classes or other
wellbeing activities.

### 5.5 Employee Assistance Program

BrightWater EAP offers free and confidential counseling, with up to 6 sessions per issue per
year for you and members of your household. Kestrel Harbor never sees who uses the service.

### 5.6 Commuting

We subsidise 50% of a public transport pass, up to $120 per month.

### 5.7 Referral bonus

If you refer a candidate who is hired, you receive a referral bonus of $2,500 once the new
employee has completed 90 days with us.

## 6. Code of conduct

### 6.1 Our principles

We act honestly, we keep our promises to customers, we treat every colleague with respect and we
follow the law in every country where our cargo travels.

### 6.2 Gifts and hospitality

You may accept gifts from a vendor or customer with a total value of up to $75 per vendor per
year. Anything above that must be declared in the Gifts Register within 5 business days and will
normally be returned or donated. Never accept cash, gift cards or vouchers, whatever the amount.

### 6.3 Conflicts of interest

Disclose any outside job, investment or family relationship that could influence your work at
Kestrel Harbor within 30 days of it arising, using the conflict-of-interest form on the
intranet.

### 6.4 Anti-bribery and customs integrity

We never make facilitation payments, including to customs or port officials, even where they
are customary. If someone asks you for one, refuse and report it the same day.

### 6.5 Respect at work

Harassment, discrimination and bullying are not tolerated. This applies in our offices,
warehouses and vehicles, at company events and in online channels.

### 6.6 Speaking up

Raise concerns with your manager, with People Operations, by e-mail to
ethics@kestrelharbor.example, or through the Speak Up line at +1-800-555-0142. The Speak Up line
is run by an independent provider, is available 24 hours a day and accepts anonymous reports.
Retaliation against anyone who raises a concern in good faith is itself a breach of this code.

## 7. Probation and performance

New employees serve a probation period of 90 days. Performance conversations take place twice a
year, in March and September, and salary changes take effect on 1 April.
"""

# --------------------------------------------------------------------------------------------
# 2. Travel and expense policy (DOCX)
# --------------------------------------------------------------------------------------------

PER_DIEM_ROWS: list[tuple[str, str, str, str]] = [
    ("Port Alder", "United States", "$210", "$68"),
    ("Brackenridge", "United States", "$165", "$59"),
    ("Cedar Flats", "Canada", "$155", "$57"),
    ("Saltmere", "United Kingdom", "$205", "$64"),
    ("Nordhaven", "Netherlands", "$190", "$71"),
    ("Marenka", "Poland", "$135", "$49"),
    ("Selat Kirana", "Malaysia", "$140", "$47"),
    ("Puerto Brisa", "Chile", "$150", "$54"),
    ("Any other city", "Any", "$175", "$60"),
]


def write_docx(path: Path) -> None:
    """Write the travel and expense policy with heading styles, a list and a table.

    Args:
        path: Destination ``.docx`` file.
    """
    doc = Document()
    normal = doc.styles["Normal"]
    normal.font.name = "Calibri"
    normal.font.size = Pt(11)

    doc.add_heading("Travel and Expense Policy", level=0)
    meta = doc.add_paragraph(
        "Policy FIN-012, version 4.1. Effective 1 February 2026. "
        "Owner: Bartholomew Nkemelu, Group Controller, Finance."
    )
    meta.alignment = WD_ALIGN_PARAGRAPH.LEFT

    doc.add_heading("1. Purpose and scope", level=1)
    doc.add_paragraph(
        "This policy explains how employees of Kestrel Harbor Logistics plan, book and claim "
        "business travel and other work-related expenses. It applies to all employees, "
        "contractors travelling at the company's expense and candidates invited to interviews. "
        "Spend the company's money as carefully as you would spend your own: choose the option "
        "that meets the business need at a reasonable cost."
    )

    doc.add_heading("2. Before you travel", level=1)
    doc.add_heading("2.1 Approval", level=2)
    doc.add_paragraph(
        "Every business trip needs your manager's approval in Ledgerline, our expense system, "
        "before anything is booked. Trips with an estimated total cost above $3,500 also need "
        "the approval of a director. International trips additionally require a travel-risk "
        "check, which the travel desk completes within 2 business days of your request."
    )
    doc.add_heading("2.2 Booking", level=2)
    doc.add_paragraph(
        "Book flights, rail and hotels through Bluewake Travel, our travel management company, "
        "either in the Bluewake portal or by phone at +1-800-555-0199. Bookings made elsewhere "
        "are reimbursed only when they are cheaper than the Bluewake fare for the same trip. "
        "Book flights at least 14 days before departure whenever possible; fares booked later "
        "must be justified in the trip request."
    )
    doc.add_heading("2.3 Class of travel", level=2)
    doc.add_paragraph("The following classes of travel apply:")
    for item in (
        "Flights with a scheduled duration under 6 hours: economy class.",
        "Flights of 6 hours or longer: premium economy.",
        "Overnight flights longer than 10 hours: business class, with the prior approval of a "
        "vice president.",
        "Rail: standard class; first class is allowed for journeys longer than 3 hours.",
        "Rental cars: intermediate size or smaller. Decline the rental company's collision "
        "insurance, because the company's own insurance covers it.",
    ):
        doc.add_paragraph(item, style="List Bullet")
    doc.add_heading("2.4 Accommodation", level=2)
    doc.add_paragraph(
        "Hotel rooms are reimbursed up to the nightly lodging cap for the destination in "
        "section 3. A stay above the cap must be approved in advance by your manager, for "
        "example when a conference hotel is more expensive. Short-term rental apartments may be "
        "used only for stays of 7 nights or more."
    )

    doc.add_heading("3. Per-diem rates", level=1)
    doc.add_paragraph(
        "The table below lists the lodging cap per night and the meals and incidentals (M&IE) "
        "allowance per day for the cities where we travel most. All amounts are in US dollars. "
        "The M&IE allowance covers meals, tips and small incidental costs and is paid without "
        "receipts. On the first and last day of a trip you receive 75% of the daily M&IE "
        "amount. Deduct meals that are provided free of charge, such as conference lunches."
    )
    table = doc.add_table(rows=1, cols=4)
    table.style = "Table Grid"
    header = table.rows[0].cells
    for cell, text in zip(
        header,
        ("City", "Country", "Lodging cap per night", "M&IE per day"),
        strict=True,
    ):
        cell.text = text
        for run in cell.paragraphs[0].runs:
            run.bold = True
    for row in PER_DIEM_ROWS:
        cells = table.add_row().cells
        for cell, text in zip(cells, row, strict=True):
            cell.text = text

    doc.add_heading("4. Ground transport and mileage", level=1)
    doc.add_paragraph(
        "Use public transport, airport trains or shared shuttles where practical. Taxis and "
        "ride-hailing services are reimbursed when public transport is unavailable, unsafe or "
        "slower by more than 45 minutes. When you use your own car for business you are "
        "reimbursed $0.61 per mile, which covers fuel, wear and insurance; tolls and parking are "
        "claimed separately. Airport parking is reimbursed up to $25 per day."
    )

    doc.add_heading("5. Client entertainment", level=1)
    doc.add_paragraph(
        "Meals and events with customers or partners are reimbursed up to $120 per attendee, "
        "including the employees present. Alcohol is reimbursable only as part of client "
        "entertainment and is limited to $60 per person. List the names and companies of all "
        "attendees and the business purpose in the expense line."
    )

    doc.add_heading("6. Non-reimbursable expenses", level=1)
    doc.add_paragraph("The company does not reimburse:")
    for item in (
        "Hotel minibar items, in-room movies and spa treatments.",
        "Traffic and parking fines, and speeding tickets.",
        "Seat, cabin and lounge upgrades bought with company money.",
        "Laundry on trips shorter than 5 nights.",
        "Pet care, childcare or house-sitting while you travel.",
        "Personal entertainment, such as sightseeing or sports events not attended with a client.",
    ):
        doc.add_paragraph(item, style="List Bullet")

    doc.add_heading("7. Corporate card", level=1)
    doc.add_paragraph(
        "Employees who travel more than 4 times a year receive a Kestrel Harbor corporate card. "
        "The card is for business expenses only; personal purchases are not allowed, even if "
        "you pay them back. Report a lost or stolen card to the card issuer and to Finance within "
        "1 business day. Reconcile each monthly statement in Ledgerline by the 10th of the "
        "following month."
    )

    doc.add_heading("8. Submitting expenses", level=1)
    doc.add_paragraph(
        "Submit your expense report in Ledgerline within 30 days of the end of your trip. Attach "
        "an itemised receipt for every expense of $25 or more. Reports submitted more than 60 "
        "days after the trip are paid only with the approval of the Chief Financial Officer. "
        "Approved expenses are reimbursed by bank transfer within 8 business days of approval. "
        "Questions about this policy go to expenses@kestrelharbor.example."
    )

    props = doc.core_properties
    props.title = "Travel and Expense Policy"
    props.subject = "Policy FIN-012"
    props.author = AUTHOR
    props.last_modified_by = AUTHOR
    props.created = FIXED_TIME
    props.modified = FIXED_TIME
    props.revision = 1
    props.keywords = "travel, expenses, per diem"
    doc.save(str(path))


# --------------------------------------------------------------------------------------------
# 3. HarborTrack product FAQ (HTML)
# --------------------------------------------------------------------------------------------

FAQ_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>HarborTrack FAQ | Kestrel Harbor Logistics</title>
<meta name="description" content="Frequently asked questions about HarborTrack, the \
shipment-tracking platform from Kestrel Harbor Logistics.">
</head>
<body>
<h1>HarborTrack: Frequently Asked Questions</h1>
<p>HarborTrack is the shipment-tracking platform built by Kestrel Harbor Logistics. It follows
ocean, air, rail, road and parcel shipments across carriers in one timeline, sends alerts when a
milestone slips and exposes every event through a REST API and webhooks. This page was last
updated on 2 September 2026.</p>

<h2>Which pricing plans are available?</h2>
<p>HarborTrack is sold in three plans. Prices are per workspace and exclude sales tax.</p>
<ul>
<li><strong>Starter</strong>: $149 per month. Up to 500 tracked shipments per month and 3 users.
Additional shipments cost $0.18 each.</li>
<li><strong>Growth</strong>: $549 per month. Up to 5,000 tracked shipments per month and 25
users, plus custom alerts and the customer-facing tracking page. Additional shipments cost $0.09
each.</li>
<li><strong>Enterprise</strong>: custom pricing. Unlimited shipments and users, single sign-on,
a dedicated customer success manager and a 99.95% monthly uptime commitment.</li>
</ul>
<p>Paying annually instead of monthly gives a 15% discount on Starter and Growth.</p>

<h2>Is there a free trial?</h2>
<p>Yes. Every new workspace starts with a 21-day free trial of the Growth plan, limited to 200
tracked shipments. No credit card is needed to start. At the end of the trial the workspace
becomes read-only until you choose a plan.</p>

<h2>What are the API rate limits?</h2>
<p>Rate limits are applied per API key and depend on your plan:</p>
<ul>
<li>Starter: 60 requests per minute.</li>
<li>Growth: 300 requests per minute.</li>
<li>Enterprise: 1,200 requests per minute, and higher limits on request.</li>
</ul>
<p>Short bursts of up to twice your limit are accepted for 10 seconds. When you exceed the limit
the API answers with HTTP status 429 and a <code>Retry-After</code> header that tells you how many
seconds to wait. Bulk endpoints count each request once, whatever the number of shipments in it,
with a maximum of 250 shipments per bulk request.</p>

<h2>How are webhooks delivered?</h2>
<p>HarborTrack sends a webhook for every new tracking event. Each delivery is signed with
HMAC-SHA256 in the <code>X-HarborTrack-Signature</code> header. If your endpoint does not answer
with a 2xx status within 10 seconds, the delivery is retried up to 8 times with exponential
backoff over 36 hours, after which the event is marked as failed in the webhook log.</p>

<h2>How long is my data retained?</h2>
<p>On Starter and Growth, shipment events and documents are retained for 25 months after the
shipment is delivered, then deleted automatically. Enterprise customers can configure retention
between 1 and 7 years. When a subscription is cancelled, the workspace data is kept for 60 days
so that you can export it, and then deleted. Deleted data is purged from backups within 45 days.
You can export everything at any time as CSV or JSON.</p>

<h2>Where is my data stored?</h2>
<p>You choose a hosting region when the workspace is created: North America (data centres near
Port Alder) or Europe (data centres near Nordhaven). Data never leaves the chosen region except
when you send it elsewhere yourself, for example through webhooks.</p>

<h2>Which carriers are supported?</h2>
<p>HarborTrack connects to 186 carriers. Coverage includes:</p>
<ul>
<li>Ocean carriers, such as Bluefin Ocean Lines and Meridian Star Shipping, tracked by container
number or bill of lading.</li>
<li>Air cargo carriers, such as Corvid Air Cargo, tracked by air waybill.</li>
<li>Rail operators, such as Trans-Meridian Rail.</li>
<li>Road and parcel carriers, such as Northgate Parcel and Kestrel Harbor's own road fleet.</li>
</ul>
<p>Customers can request a new carrier integration from the settings page. A new carrier is
usually added within 6 weeks; Enterprise requests are prioritised.</p>

<h2>How often is tracking information refreshed?</h2>
<ul>
<li>Ocean shipments: every 4 hours.</li>
<li>Air shipments: every 30 minutes.</li>
<li>Road and parcel shipments: event-driven, within 2 minutes of the carrier's scan.</li>
</ul>

<h2>What support is included?</h2>
<ul>
<li>Starter: e-mail support with a first response within 2 business days.</li>
<li>Growth: chat and e-mail support with a first response within 8 business hours.</li>
<li>Enterprise: 24/7 support with a 1-hour response time for priority-1 incidents.</li>
</ul>

<h2>Does HarborTrack support single sign-on?</h2>
<p>Single sign-on with SAML 2.0 or OpenID Connect, and user provisioning through SCIM, are
available on the Enterprise plan.</p>

<h2>Is there a mobile app?</h2>
<p>Yes. The HarborTrack app for iOS and Android shows shipment timelines, lets you scan container
numbers with the camera and delivers push notifications for delays.</p>

<h2>How do I cancel?</h2>
<p>Monthly plans can be cancelled at any time and end at the close of the current billing
period. Annual plans are not refundable, but you can downgrade at renewal. To cancel, open
<em>Settings &gt; Billing</em> or write to harbortrack-support@kestrelharbor.example.</p>
</body>
</html>
"""

# --------------------------------------------------------------------------------------------
# 4. Information security policy (PDF, one section per page)
# --------------------------------------------------------------------------------------------

# Each inner list is one page: ("h", text) heading, ("p", text) paragraph, ("ul", [items]).
ISP_PAGES: list[list[tuple[str, str | list[str]]]] = [
    [
        ("title", "Information Security Policy"),
        ("p", "Policy ISP-004, version 3.2. Effective 1 March 2026. Classification: Internal."),
        ("h", "1. Purpose and scope"),
        (
            "p",
            "This policy sets the minimum security requirements for the information, systems "
            "and devices of Kestrel Harbor Logistics, including the HarborTrack platform and the "
            "warehouse and fleet systems. It applies to all employees, contractors and temporary "
            "staff, and to vendors who access company systems.",
        ),
        ("h", "2. Roles and responsibilities"),
        (
            "ul",
            [
                "The Chief Information Security Officer (CISO), Ingrid Salvesen, owns this "
                "policy and approves every exception to it.",
                "The Security Operations team monitors systems around the clock and leads "
                "incident response.",
                "Managers make sure that their teams complete training and that access is "
                "removed when people change roles.",
                "Every employee protects the information they handle and reports anything "
                "suspicious without delay.",
            ],
        ),
        ("h", "3. Policy governance"),
        (
            "p",
            "This policy is reviewed at least once a year by the Security Steering Committee, "
            "which meets in the first week of every quarter. An exception to any requirement "
            "must be requested in writing, may be granted by the CISO for at most 180 days and "
            "is recorded in the exceptions register. Breaches of this policy may lead to "
            "disciplinary action, up to and including dismissal.",
        ),
    ],
    [
        ("h", "4. Data classification"),
        (
            "p",
            "All company information is classified into one of four levels. The owner of the "
            "information chooses its level when it is created; when in doubt, choose the higher "
            "level.",
        ),
        (
            "ul",
            [
                "Public: approved for release, such as published HarborTrack prices and press "
                "releases.",
                "Internal: for employees and contractors only, such as this policy and the "
                "employee handbook.",
                "Confidential: business information whose disclosure would harm the company or "
                "its customers, such as rate negotiations, contracts and shipment manifests.",
                "Restricted: the most sensitive level, such as customs declarations containing "
                "tax identifiers, payroll data, passport copies of drivers, and security keys.",
            ],
        ),
        ("h", "5. Handling rules"),
        (
            "ul",
            [
                "Confidential and Restricted documents must carry their classification label in "
                "the header or file name.",
                "Restricted data may only be shared through the approved encrypted file "
                "transfer service, never as a plain e-mail attachment.",
                "Restricted data may not be stored on removable media or in personal cloud "
                "storage under any circumstances.",
                "Printed Restricted documents are collected from the printer immediately and "
                "destroyed in the locked shredding bins.",
            ],
        ),
        ("h", "6. Retention"),
        (
            "p",
            "Unless a longer period is required by law or by contract, Confidential business "
            "records are kept for 6 years after the end of the financial year to which they "
            "relate and then securely deleted. Customs records are kept for the period that "
            "the relevant customs authority requires.",
        ),
    ],
    [
        ("h", "7. Accounts and passwords"),
        (
            "ul",
            [
                "Every person has a personal account; shared accounts are not allowed except "
                "for documented service accounts.",
                "Passwords must be at least 14 characters long. We recommend passphrases of "
                "four or more unrelated words.",
                "Passwords are not changed on a fixed schedule; they must be changed "
                "immediately if there is any sign that they have been exposed.",
                "Accounts are locked for 15 minutes after 8 consecutive failed sign-in attempts.",
                "Passwords must be stored only in the company password manager.",
            ],
        ),
        ("h", "8. Multi-factor authentication"),
        (
            "p",
            "Multi-factor authentication (MFA) is mandatory for e-mail, the VPN, HarborTrack "
            "administration and every system reachable from the internet. Approved second "
            "factors are an authenticator app with number matching or a FIDO2 security key. "
            "Codes sent by SMS or voice call are not accepted. Administrators and other "
            "privileged users must use a FIDO2 hardware security key.",
        ),
        ("h", "9. Access management"),
        (
            "ul",
            [
                "Access is granted on the principle of least privilege and approved by the "
                "owner of the system.",
                "Managers review their team's access every quarter.",
                "When an employee leaves, all of their accounts are disabled within 4 hours of "
                "the end of their last working day.",
                "Privileged access to production systems is granted just in time, for at most 8 "
                "hours per request.",
            ],
        ),
    ],
    [
        ("h", "10. Devices and encryption"),
        (
            "ul",
            [
                "All company laptops and desktops use full-disk encryption (BitLocker on "
                "Windows, FileVault on macOS), enabled before the device is issued.",
                "Screens lock automatically after 5 minutes of inactivity. Lock your screen "
                "whenever you leave your device.",
                "Operating-system and browser updates classified as critical must be installed "
                "within 72 hours of release; all other security updates within 14 days.",
                "USB mass-storage devices are blocked on company laptops. Exceptions are "
                "granted by the CISO for a named device and purpose.",
                "Handheld scanners and tablets used in warehouses are enrolled in device "
                "management and can be wiped remotely.",
            ],
        ),
        ("h", "11. Personal devices"),
        (
            "p",
            "Personal phones and tablets may be used for company e-mail, chat and calendar "
            "only through the managed work apps, which keep company data in an encrypted "
            "container. Company data must never be downloaded to the personal part of the "
            "device. Personal laptops may not be used to access company systems.",
        ),
        ("h", "12. Lost or stolen devices"),
        (
            "p",
            "Report a lost or stolen device that holds or can reach company data to the "
            "Service Desk within 2 hours of noticing the loss, by phone if possible, so that it "
            "can be locked and wiped; the Service Desk opens the security incident for you. "
            "Report the theft to the police as well and give the report number to the Service "
            "Desk.",
        ),
        ("h", "13. Network security"),
        (
            "p",
            "Remote access to internal systems is only through the company VPN. Guest Wi-Fi is "
            "separated from the company network and must not be used by company laptops when "
            "the staff network is available.",
        ),
    ],
    [
        ("h", "14. Incident response"),
        (
            "p",
            "A security incident is any event that threatens the confidentiality, integrity or "
            "availability of company or customer information, such as a phishing e-mail that "
            "was clicked, malware, a lost device or data sent to the wrong recipient. Report "
            "any suspected incident within 30 minutes of noticing it, by calling the security "
            "hotline on extension 7000 or writing to security@kestrelharbor.example. Do not try "
            "to investigate on your own.",
        ),
        ("h", "15. Severity levels and response times"),
        (
            "ul",
            [
                "SEV1 (critical): confirmed breach of Restricted data or an outage of "
                "HarborTrack for all customers. An incident bridge opens within 15 minutes and "
                "the CISO and the CEO are informed within 1 hour.",
                "SEV2 (high): a compromised account or malware on a single device. Response "
                "starts within 1 hour.",
                "SEV3 (medium): a contained policy breach or a blocked attack. Response starts "
                "within 1 business day.",
                "SEV4 (low): a suspicious event with no impact. Reviewed within 5 business days.",
            ],
        ),
        ("h", "16. Notification"),
        (
            "p",
            "When a breach affecting customer data is confirmed, the affected customers are "
            "notified within 48 hours of confirmation. Data protection authorities are "
            "notified within 72 hours where the law requires it. Only the Legal team and the "
            "CISO may communicate with customers, authorities or the press about an incident.",
        ),
        ("h", "17. After an incident"),
        (
            "p",
            "Every SEV1 and SEV2 incident has a blameless post-incident review within 10 "
            "business days of its closure. Actions from the review are tracked to completion "
            "by the Security Steering Committee.",
        ),
    ],
    [
        ("h", "18. Security awareness training"),
        (
            "p",
            "Every employee completes security awareness training within 14 days of joining and "
            "again every year by 31 October. Simulated phishing e-mails are sent to all staff "
            "every month. Anyone who fails two simulations in a row is enrolled in a short "
            "refresher course.",
        ),
        ("h", "19. Backups and recovery"),
        (
            "p",
            "Production systems, including HarborTrack, are backed up every day. Backups are "
            "encrypted, stored in a second location and kept for 90 days. A restore from backup "
            "is tested every quarter for each critical system. The recovery time objective for "
            "HarborTrack is 4 hours and the recovery point objective is 15 minutes.",
        ),
        ("h", "20. Vendors and third parties"),
        (
            "p",
            "Vendors that process Confidential or Restricted data must pass a security "
            "assessment before the contract is signed and again every 2 years. Their access is "
            "limited to what the contract requires and is removed when the contract ends.",
        ),
        ("h", "21. Acceptable use"),
        (
            "ul",
            [
                "Company systems are for business use; limited personal use is allowed if it "
                "does not interfere with work or break this policy.",
                "Only software from the company software catalogue may be installed.",
                "Company information must not be pasted into public AI chat tools or "
                "translation websites.",
            ],
        ),
        (
            "p",
            "Questions about this policy go to security@kestrelharbor.example.",
        ),
    ],
]


def write_pdf(path: Path) -> None:
    """Write the information security policy, one section group per page.

    Args:
        path: Destination ``.pdf`` file.
    """
    styles = getSampleStyleSheet()
    title = ParagraphStyle("ISPTitle", parent=styles["Title"], fontSize=20, spaceAfter=6)
    heading = ParagraphStyle(
        "ISPHeading", parent=styles["Heading2"], fontSize=13, spaceBefore=10, spaceAfter=4
    )
    body = ParagraphStyle("ISPBody", parent=styles["BodyText"], fontSize=10.5, leading=14)
    n_pages = len(ISP_PAGES)

    def decorate(canvas: Canvas, doc: BaseDocTemplate) -> None:
        page = canvas.getPageNumber()
        canvas.saveState()
        canvas.setFont("Helvetica", 8.5)
        canvas.setFillColor(colors.grey)
        canvas.drawString(
            20 * mm, 287 * mm, f"{COMPANY} | Information Security Policy ISP-004 v3.2"
        )
        canvas.drawRightString(190 * mm, 12 * mm, f"Internal | Page {page} of {n_pages}")
        canvas.restoreState()

    story: list[Flowable] = []
    for index, page in enumerate(ISP_PAGES):
        for kind, content in page:
            if kind == "title":
                story.append(Paragraph(str(content), title))
            elif kind == "h":
                story.append(Paragraph(str(content), heading))
            elif kind == "p":
                story.append(Paragraph(str(content), body))
                story.append(Spacer(1, 3))
            elif kind == "ul":
                assert isinstance(content, list)
                story.append(
                    ListFlowable(
                        [ListItem(Paragraph(item, body), leftIndent=12) for item in content],
                        bulletType="bullet",
                        start="\u2022",
                        leftIndent=12,
                    )
                )
        if index == 0:
            story.append(Spacer(1, 12))
            version_table = Table(
                [
                    ["Version", "Date", "Change"],
                    ["3.0", "2024-02-12", "Restructured around data classification"],
                    ["3.1", "2025-03-03", "FIDO2 keys required for administrators"],
                    ["3.2", "2026-03-01", "SMS codes removed as a second factor"],
                ],
                colWidths=[22 * mm, 30 * mm, 110 * mm],
            )
            version_table.setStyle(
                TableStyle(
                    [
                        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 9),
                        ("FONT", (0, 1), (-1, -1), "Helvetica", 9),
                        ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#DDE6EE")),
                    ]
                )
            )
            story.append(version_table)
        if index < n_pages - 1:
            story.append(PageBreak())

    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=20 * mm,
        bottomMargin=20 * mm,
        title="Information Security Policy",
        author=AUTHOR,
        subject="Policy ISP-004 version 3.2",
        creator="Citewise samples/build_samples.py",
        invariant=1,
    )
    doc.build(story, onFirstPage=decorate, onLaterPages=decorate)
    # Invariant mode stamps 2000-01-01; put the policy's effective date instead (same length,
    # so the cross-reference offsets stay valid).
    data = path.read_bytes().replace(b"D:20000101000000", b"D:20260301000000")
    path.write_bytes(data)


# --------------------------------------------------------------------------------------------
# 5. Q3 all-hands deck (PPTX)
# --------------------------------------------------------------------------------------------

SLIDES: list[tuple[str, list[str]]] = [
    (
        "Q3 2026 Results",
        [
            "Revenue: $48.6 million, up 11.2% on Q3 2025",
            "Gross margin: 23.8% (Q2: 22.9%)",
            "Adjusted EBITDA: $5.1 million",
            "On-time delivery across all lanes: 96.1%",
            "37 new freight-forwarding customers signed in the quarter",
        ],
    ),
    (
        "HarborTrack",
        [
            "Annual recurring revenue reached $9.4 million",
            "1,240 paying customer workspaces at 30 September",
            "Net revenue retention: 118%",
            "ClearPath customs pre-clearance module launched on 19 August",
            "Average API uptime in Q3: 99.97%",
        ],
    ),
    (
        "Our People",
        [
            "Headcount at 30 September: 877 (Q2: 851)",
            "41 people joined and 15 left during the quarter",
            "Engineering and product team: 96 people",
            "Annualised voluntary attrition: 6.9%",
            "Employee engagement survey participation: 84%",
        ],
    ),
    (
        "New Offices",
        [
            "Puerto Brisa, Chile: opened on 4 August 2026, our first office in South America, "
            "620 square metres next to the container terminal",
            "Marenka, Poland: opened on 8 September 2026 as our European customer-service hub, "
            "with support in Polish, German and English",
            "Saltmere team moves to a larger office in the first quarter of 2027",
            "Next: a sales office in Kaiwhero, New Zealand, planned for the second quarter of 2027",
        ],
    ),
    (
        "Q4 Priorities and Next Steps",
        [
            "Peak season readiness: 60 seasonal warehouse staff hired by 15 November",
            "Project Lighthouse: robotic pallet-picking pilot at the Brackenridge distribution "
            "center",
            "HarborTrack: carbon-emission estimates per shipment, in beta from December",
            "Q4 all-hands: 21 January 2027, Port Alder atrium and online",
            "Questions? Post them in the #all-hands channel",
        ],
    ),
]


def write_pptx(path: Path) -> None:
    """Write the Q3 all-hands deck: a title slide and five title-and-bullets slides.

    Args:
        path: Destination ``.pptx`` file.
    """
    prs = Presentation()
    title_slide = prs.slides.add_slide(prs.slide_layouts[0])
    title_slide.shapes.title.text = "Q3 2026 All-Hands"
    title_slide.placeholders[
        1
    ].text = f"{COMPANY}\n15 October 2026, Port Alder\nPresented by Rosalind Achterberg, CEO"
    for heading, bullets in SLIDES:
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = heading
        frame = slide.placeholders[1].text_frame
        frame.text = bullets[0]
        for bullet in bullets[1:]:
            para = frame.add_paragraph()
            para.text = bullet
        for para in frame.paragraphs:
            for run in para.runs:
                run.font.size = PptPt(20)
    props = prs.core_properties
    props.title = "Q3 2026 All-Hands"
    props.author = AUTHOR
    props.last_modified_by = AUTHOR
    props.created = FIXED_TIME
    props.modified = FIXED_TIME
    props.revision = 1
    prs.save(str(path))


# --------------------------------------------------------------------------------------------
# 6. Office locations (CSV)
# --------------------------------------------------------------------------------------------

OFFICES: list[tuple[str, str, str, str, int, int, str]] = [
    (
        "Port Alder Headquarters",
        "Port Alder",
        "United States",
        "410 Cormorant Quay, Port Alder",
        412,
        2009,
        "Delphine Okafor",
    ),
    (
        "Brackenridge Distribution Center",
        "Brackenridge",
        "United States",
        "88 Tollgate Road, Brackenridge",
        167,
        2013,
        "Tomasz Verhoeven",
    ),
    (
        "Saltmere Office",
        "Saltmere",
        "United Kingdom",
        "12 Ropewalk Lane, Saltmere",
        58,
        2016,
        "Harriet Quayle",
    ),
    (
        "Nordhaven Hub",
        "Nordhaven",
        "Netherlands",
        "Dokweg 141, Nordhaven",
        94,
        2018,
        "Joost van Amerongen",
    ),
    (
        "Selat Kirana Office",
        "Selat Kirana",
        "Malaysia",
        "Level 9, Menara Kirana, 3 Jalan Pelabuhan, Selat Kirana",
        71,
        2020,
        "Nurul Haziqah Rahman",
    ),
    (
        "Cedar Flats Warehouse",
        "Cedar Flats",
        "Canada",
        "2250 Millrace Drive, Cedar Flats",
        39,
        2022,
        "Marcus Beaulieu",
    ),
    (
        "Puerto Brisa Office",
        "Puerto Brisa",
        "Chile",
        "Avenida Costanera 915, Puerto Brisa",
        14,
        2026,
        "Valentina Echeverria",
    ),
    (
        "Marenka Service Hub",
        "Marenka",
        "Poland",
        "ul. Portowa 27, Marenka",
        22,
        2026,
        "Agnieszka Wrobel",
    ),
]


def write_csv(path: Path) -> None:
    """Write the office list as RFC 4180 CSV with a header row.

    Args:
        path: Destination ``.csv`` file.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        ["office", "city", "country", "address", "headcount", "opened_year", "site_manager"]
    )
    writer.writerows(OFFICES)
    path.write_text(buf.getvalue(), encoding="utf-8")


# --------------------------------------------------------------------------------------------
# 7. Shipping rates 2026 (XLSX, two sheets)
# --------------------------------------------------------------------------------------------

RATE_BANDS = ["0-45 kg", "45-100 kg", "100-500 kg", "500-1,000 kg", "Over 1,000 kg"]
# lane id, origin, destination, mode, transit days, minimum charge, rate per kg per band
RATE_ROWS: list[tuple[str, str, str, str, int, int, list[float]]] = [
    ("KH-O-101", "Port Alder", "Nordhaven", "Ocean (LCL)", 24, 185, [0.95, 0.82, 0.71, 0.63, 0.57]),
    (
        "KH-O-102",
        "Port Alder",
        "Selat Kirana",
        "Ocean (LCL)",
        19,
        175,
        [0.91, 0.79, 0.67, 0.59, 0.53],
    ),
    ("KH-A-201", "Port Alder", "Puerto Brisa", "Air", 3, 95, [6.45, 5.35, 4.85, 4.35, 3.95]),
    ("KH-A-202", "Port Alder", "Saltmere", "Air", 2, 90, [5.95, 4.95, 4.45, 3.95, 3.65]),
    ("KH-A-203", "Selat Kirana", "Port Alder", "Air", 4, 105, [6.95, 5.85, 5.15, 4.65, 4.25]),
    ("KH-R-301", "Nordhaven", "Saltmere", "Road", 2, 65, [1.45, 1.25, 1.05, 0.93, 0.86]),
    ("KH-R-302", "Nordhaven", "Marenka", "Road", 3, 70, [1.55, 1.35, 1.15, 0.99, 0.89]),
    ("KH-R-303", "Brackenridge", "Cedar Flats", "Road", 1, 55, [1.15, 0.97, 0.83, 0.74, 0.69]),
]
RATE_NOTES = [
    "Rates in USD per chargeable kg, valid 1 January to 31 December 2026.",
    "Chargeable weight is the greater of actual weight and volumetric weight (1 cubic metre = "
    "167 kg for air, 333 kg for road, 1,000 kg for ocean).",
    "A fuel surcharge of 14.5% is added to all air and road lanes; ocean lanes carry the "
    "carrier's bunker adjustment at cost.",
    "Dangerous goods: add 35% to the rate. Temperature-controlled cargo is quoted separately.",
]
# date, holiday, offices closed, booking cut-off (local time), notes
HOLIDAYS: list[tuple[dt.date, str, str, str, str]] = [
    (dt.date(2026, 1, 1), "New Year's Day", "All offices", "Mon 29 Dec 2025, 16:00", ""),
    (
        dt.date(2026, 2, 17),
        "Lunar New Year",
        "Selat Kirana",
        "Thu 12 Feb, 15:00",
        "Selat Kirana also closed on 18 February",
    ),
    (
        dt.date(2026, 4, 3),
        "Good Friday",
        "Saltmere, Nordhaven, Cedar Flats",
        "Wed 1 Apr, 16:00",
        "",
    ),
    (dt.date(2026, 4, 27), "King's Day", "Nordhaven", "Fri 24 Apr, 14:00", ""),
    (
        dt.date(2026, 5, 14),
        "Founders' Day",
        "All offices",
        "Tue 12 May, 16:00",
        "Company holiday; HarborTrack support stays available",
    ),
    (dt.date(2026, 7, 1), "Canada Day", "Cedar Flats", "Mon 29 Jun, 16:00", ""),
    (
        dt.date(2026, 7, 3),
        "Independence Day (observed)",
        "Port Alder, Brackenridge",
        "Wed 1 Jul, 16:00",
        "",
    ),
    (
        dt.date(2026, 9, 18),
        "Fiestas Patrias",
        "Puerto Brisa",
        "Tue 15 Sep, 13:00",
        "Puerto Brisa also closed on 19 September",
    ),
    (dt.date(2026, 11, 11), "Independence Day", "Marenka", "Mon 9 Nov, 15:00", ""),
    (
        dt.date(2026, 11, 26),
        "Thanksgiving Day",
        "Port Alder, Brackenridge",
        "Mon 23 Nov, 16:00",
        "Reduced road capacity from 25 to 27 November",
    ),
    (
        dt.date(2026, 12, 25),
        "Christmas Day",
        "All offices",
        "Fri 18 Dec, 16:00",
        "Last ocean consolidation of the year departs 11 December",
    ),
    (dt.date(2026, 12, 28), "Boxing Day (observed)", "Saltmere", "Wed 23 Dec, 12:00", ""),
]


def write_xlsx(path: Path) -> None:
    """Write the 2026 rate card and the holiday calendar as two worksheets.

    Args:
        path: Destination ``.xlsx`` file.
    """
    wb = Workbook()
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDE6EE")

    ws = wb.active
    assert ws is not None
    ws.title = "Rate Card 2026"
    header = ["Lane", "Origin", "Destination", "Mode", "Transit days", "Minimum charge (USD)"]
    ws.append(header + [f"USD/kg {band}" for band in RATE_BANDS])
    for lane, origin, dest, mode, days, minimum, rates in RATE_ROWS:
        ws.append([lane, origin, dest, mode, days, minimum, *rates])
    for cell in ws[1]:
        cell.font = bold
        cell.fill = fill
        cell.alignment = Alignment(wrap_text=True)
    for row in ws.iter_rows(min_row=2, min_col=7, max_col=11):
        for cell in row:
            cell.number_format = "0.00"
    ws.append([])
    for note in RATE_NOTES:
        ws.append([note])
    for col, width in zip("ABCDEFGHIJK", (11, 14, 14, 12, 8, 12, 10, 10, 11, 12, 12), strict=True):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "B2"

    cal = wb.create_sheet("Holidays and Cut-offs")
    cal.append(["Date", "Holiday", "Offices closed", "Last booking cut-off (local time)", "Notes"])
    for day, name, closed, cutoff, notes in HOLIDAYS:
        cal.append([day, name, closed, cutoff, notes])
    for cell in cal[1]:
        cell.font = bold
        cell.fill = fill
    for row in cal.iter_rows(min_row=2, max_col=1):
        for cell in row:
            cell.number_format = "yyyy-mm-dd"
    for col, width in zip("ABCDE", (12, 26, 38, 26, 48), strict=True):
        cal.column_dimensions[col].width = width

    wb.properties.title = "Shipping rates 2026"
    wb.properties.creator = AUTHOR
    wb.properties.lastModifiedBy = AUTHOR
    wb.properties.created = FIXED_TIME
    wb.properties.modified = FIXED_TIME
    wb.save(str(path))


# --------------------------------------------------------------------------------------------
# 8. E-mails (RFC 5322 .eml, plain text)
# --------------------------------------------------------------------------------------------

VPN_EMAIL_BODY = """\
Hello everyone,

We are replacing our remote-access VPN. The current client, PortGate, is reaching the end of
its support life, and from next month all remote access to Kestrel Harbor systems will go
through the new client, Kestrel SecureLink.

WHAT IS CHANGING

- Cut-over date: Monday 9 November 2026 at 06:00 Port Alder time. From that moment, new
  connections are accepted only through SecureLink.
- PortGate will keep working in read-only mode for one more week and will be switched off
  completely on Monday 16 November 2026.
- SecureLink connects automatically when your laptop is outside a Kestrel Harbor office, so
  you no longer need to start the VPN by hand.
- Sign-in uses your normal company account and the same multi-factor authentication as
  e-mail. No separate VPN password is needed any more.

WHAT YOU NEED TO DO

1. Install "Kestrel SecureLink" from the Software Center on your laptop before 6 November.
   Installation takes about 5 minutes and needs one restart.
2. Sign in once while you are in the office or on PortGate, so that your device certificate
   is issued.
3. Uninstall nothing yourself: PortGate is removed automatically after 16 November.

Warehouse handhelds and dock tablets are migrated by the IT field team; their users do not
need to do anything.

HELP

Drop-in help sessions are held every Thursday at 14:00 in the Gannet meeting room at
Port Alder headquarters and online. If you have trouble, open a ticket with the category
"Remote access" or call the Service Desk on extension 4357.

About 120 colleagues in the pilot group have used SecureLink since September, and they
report faster connections and far fewer drop-outs on hotel Wi-Fi.

Thank you,
Priya Raghunathan
IT Infrastructure Lead, Kestrel Harbor Logistics
"""

BENEFITS_EMAIL_BODY = """\
Hi all,

A reminder that open enrollment for 2027 benefits is now open. The enrollment window runs
from Monday 2 November until Friday 20 November 2026 at 17:00 Port Alder time. Elections you
make take effect on 1 January 2027.

HOW TO ENROLL

Log in to Anchorpoint, our benefits platform, from the People page of the intranet. Review
your medical, dental and vision plans, your dependants and your beneficiaries, then press
"Confirm elections". You will receive a confirmation e-mail from Anchorpoint within one hour.

WHAT IS NEW FOR 2027

- A new vision plan, ClearSight Plus, with a yearly allowance of $250 for frames or contact
  lenses.
- The company contribution to the health savings account (HSA) rises to $900 per year for
  individual coverage and $1,800 per year for family coverage.
- Fertility and adoption support is added to every medical plan, with a lifetime benefit
  of $15,000.
- Employee premiums for the Standard medical plan stay the same as in 2026.

IF YOU DO NOTHING

Your current medical, dental and vision elections roll over to 2027 unchanged. Flexible
spending account (FSA) elections do NOT roll over: if you want an FSA in 2027 you must
enroll again during this window.

BENEFITS FAIR

Meet our insurance partners at the benefits fair on Tuesday 10 November, 11:00 to 14:00, in
the Port Alder atrium. Colleagues in other offices can join the recorded walkthrough on the
intranet.

Questions? Reply to this e-mail or write to benefits@kestrelharbor.example.

Best regards,
Camille Osei-Mensah
Benefits Manager, People Operations
"""


def _email(sender: str, to: str, subject: str, date: str, message_id: str, body: str) -> bytes:
    """Build a plain-text e-mail with fixed headers.

    Args:
        sender: ``From`` header.
        to: ``To`` header.
        subject: ``Subject`` header.
        date: ``Date`` header in RFC 5322 format.
        message_id: ``Message-ID`` header.
        body: Plain-text body (ASCII).

    Returns:
        The message as bytes with CRLF line endings.
    """
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = date
    msg["Message-ID"] = message_id
    msg.set_content(body, charset="us-ascii", cte="7bit")
    return msg.as_bytes(policy=SMTP)


def write_emails(out: Path) -> None:
    """Write the two announcement e-mails.

    Args:
        out: Output directory.
    """
    (out / "announce-new-vpn.eml").write_bytes(
        _email(
            "KHL IT Announcements <it-announcements@kestrelharbor.example>",
            "All Staff <all-staff@kestrelharbor.example>",
            "New VPN: Kestrel SecureLink replaces PortGate on 9 November",
            "Tue, 06 Oct 2026 09:12:00 -0700",
            "<20261006091200.vpn-cutover@kestrelharbor.example>",
            VPN_EMAIL_BODY,
        )
    )
    (out / "benefits-enrollment-reminder.eml").write_bytes(
        _email(
            "People Operations <people@kestrelharbor.example>",
            "All Staff <all-staff@kestrelharbor.example>",
            "Reminder: 2027 benefits open enrollment closes 20 November",
            "Mon, 02 Nov 2026 08:30:00 -0800",
            "<20261102083000.open-enrollment@kestrelharbor.example>",
            BENEFITS_EMAIL_BODY,
        )
    )


# --------------------------------------------------------------------------------------------
# 9. IT onboarding guide (plain text)
# --------------------------------------------------------------------------------------------

ONBOARDING_TXT = """\
KESTREL HARBOR LOGISTICS - IT ONBOARDING GUIDE
==============================================

Revised 16 November 2026. Maintained by the IT Service Desk.

Welcome to Kestrel Harbor! This guide walks you through your first days with our IT
systems. Keep it handy: most first-week questions are answered here.


YOUR FIRST DAY
--------------

Collect your laptop from the IT Depot on the 2nd floor of the Port Alder headquarters
between 08:30 and 10:00. In other offices your site manager hands it over. Bring a photo ID.

Standard laptops run Windows. Engineers and designers may ask for a MacBook; the request
needs their manager's approval and is usually fulfilled within 5 business days.

Your badge is printed at reception. It opens the doors of your own office and releases
your print jobs.


ACCOUNTS AND SIGN-IN
--------------------

Your username is your first initial followed by your last name, for example
jkowalski@kestrelharbor.example. If that name is already taken, a digit is added.

Your temporary password is sent to your manager. It is valid for 36 hours and must be
replaced at your first sign-in with a passphrase that follows the Information Security
Policy.

Enroll in multi-factor authentication before lunch on your first day. Use an authenticator
app on your phone, or ask the IT Depot for a security key. Administrators receive a hardware
security key on their first day.


NETWORK AND REMOTE ACCESS
-------------------------

In the office, connect your laptop to the KHL-Staff Wi-Fi network. It signs you in with
your company account automatically.

Visitors use KHL-Guest. Reception prints a guest voucher that is valid for 12 hours.
Company laptops must never join KHL-Guest.

Outside the office, Kestrel SecureLink connects you to internal systems. It is installed on
every new laptop and starts automatically.


SOFTWARE
--------

Install software only from the Software Center. Standard packages, such as the office suite,
the browser, the chat client and the password manager, are already installed. Anything
that is not in the Software Center can be requested through a ticket; new software is
reviewed by IT Security within 7 business days.

HarborTrack staff accounts are created by the HarborTrack team once your manager submits
the access form.


PRINTING
--------

All offices use follow-me printing. Send your document to the printer queue "KHL-Print"
and collect it at any printer in your office by tapping your badge. Unreleased jobs are
deleted after 24 hours. Colour printing is enabled on request.


SECURITY TRAINING
-----------------

Complete the security awareness course in the learning portal within 14 days of your start
date. It takes about 45 minutes. You will also start receiving simulated phishing e-mails;
use the "Report phishing" button in your mail client whenever something looks suspicious.


GETTING HELP
------------

IT Service Desk
  Phone:    extension 4357 (from outside: +1-555-0100 extension 4357)
  E-mail:   helpdesk@kestrelharbor.example
  Portal:   Self-Service on the intranet
  Hours:    07:00 to 19:00 Port Alder time, Monday to Friday

Outside those hours, the on-call engineer handles urgent problems that stop work, such as a
locked account or a broken laptop before a customer visit. Call the Service Desk number and
choose option 9.

Security incidents, such as a clicked phishing link or suspected malware, are NOT Service Desk
tickets: report them to the security hotline as described in the Information Security Policy.
The one exception is a lost or stolen device: call the Service Desk straight away so that it
can be locked and wiped.
"""

# --------------------------------------------------------------------------------------------
# Helpers and entry point
# --------------------------------------------------------------------------------------------

_MODIFIED_RE = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")
_CREATED_RE = re.compile(rb"(<dcterms:created[^>]*>)[^<]*(</dcterms:created>)")


def normalize_zip(path: Path) -> None:
    """Rewrite an OOXML zip with fixed member timestamps and fixed core-property dates.

    python-docx, python-pptx and openpyxl stamp each member with the current time and
    openpyxl also overwrites ``dcterms:modified``; this makes the output reproducible.

    Args:
        path: The ``.docx``, ``.pptx`` or ``.xlsx`` file to rewrite in place.
    """
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    with zipfile.ZipFile(path) as src:
        members = [(info.filename, src.read(info.filename)) for info in src.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for name, data in members:
            if name == "docProps/core.xml":
                data = _MODIFIED_RE.sub(rb"\g<1>" + stamp + rb"\g<2>", data)
                data = _CREATED_RE.sub(rb"\g<1>" + stamp + rb"\g<2>", data)
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, data)
    path.write_bytes(buf.getvalue())


def write_bad_fixtures(out: Path) -> list[Path]:
    """Write the malformed inputs used by the ingestion tests.

    Args:
        out: Output directory (``tests/fixtures/bad``), created if missing.

    Returns:
        The generated files, sorted by name.
    """
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20261020)
    garbage = bytes(rng.randrange(256) for _ in range(2048))
    # A PDF header followed by noise: no objects, no xref, no trailer.
    (out / "corrupt.pdf").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + garbage)
    # Random bytes with a .docx name: not a zip archive at all.
    (out / "corrupt.docx").write_bytes(bytes(rng.randrange(256) for _ in range(1536)))
    (out / "empty.txt").write_bytes(b"")
    (out / "whitespace.md").write_bytes(b"   \n\n\t  \n        \n\n")
    # The start of a DOS/PE executable: "MZ" header, e_lfanew pointing at a "PE\0\0" signature.
    header = bytearray(128)
    header[0:2] = b"MZ"
    header[0x3C:0x40] = (0x40).to_bytes(4, "little")
    header[0x40:0x44] = b"PE\x00\x00"
    header[0x44:0x46] = (0x8664).to_bytes(2, "little")
    (out / "program.exe").write_bytes(
        bytes(header) + b"This program cannot be run in DOS mode.\r\n"
    )
    return sorted(p for p in out.iterdir() if p.is_file())


def build(out: Path) -> list[Path]:
    """Generate every sample file into ``out``.

    Args:
        out: Output directory, created if missing.

    Returns:
        The generated files, sorted by name.
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / "employee-handbook.md").write_text(HANDBOOK_MD, encoding="utf-8")
    write_docx(out / "travel-and-expense-policy.docx")
    (out / "harbortrack-product-faq.html").write_text(FAQ_HTML, encoding="utf-8")
    write_pdf(out / "information-security-policy.pdf")
    write_pptx(out / "q3-all-hands.pptx")
    write_csv(out / "office-locations.csv")
    write_xlsx(out / "shipping-rates-2026.xlsx")
    write_emails(out)
    (out / "it-onboarding.txt").write_text(ONBOARDING_TXT, encoding="utf-8")
    for name in ("travel-and-expense-policy.docx", "q3-all-hands.pptx", "shipping-rates-2026.xlsx"):
        normalize_zip(out / name)
    return sorted(p for p in out.iterdir() if p.is_file())


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument(
        "--bad-fixtures",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write the malformed test inputs into DIR (tests/fixtures/bad)",
    )
    args = parser.parse_args()
    paths = build(args.out)
    if args.bad_fixtures is not None:
        paths += write_bad_fixtures(args.bad_fixtures)
    for path in paths:
        print(f"{path.stat().st_size:>8}  {path}")


if __name__ == "__main__":
    main()
