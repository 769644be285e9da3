"""Word lists for bench/seed_million.py: people, companies, domains, zones, reasons, errors.

Names mix languages (and some accents) so search and case-folding meet realistic text. Each
attendee's email is built from the ASCII form of the name (``ascii_slug``).
"""

import re
import unicodedata


def _words(text: str) -> list[str]:
    return text.split()


FIRST_NAMES = _words(
    """
Aaliyah Adam Adrián Agnieszka Ahmed Aiko Aisha Alejandro Alexander Alice Amelia Ana Anders
Andrea Andrés Anna Antoine Aoife Arjun Astrid Ava Benjamin Björn Camila Carlos Charlotte Chen
Chiara Chloé Chloe Daniel David Diego Dmitri Elena Elif Elijah Emily Emma Erik Ethan Eva Fatima
Felix Fernando Finn Francesca François Freya Gabriel Giulia Grace Hannah Hans Harper Hiroshi
Ingrid Isabella Ivan Jack James Javier Jean Johanna Jonas José Juan Julia Kai Karin Kenji Lars
Laura Leila Leo Liam Lucas Lucía Luis Łukasz Maja Marco Margaux María Mateo Matteo Maya Mei
Mia Miguel Mohammed Nadia Noah Nora Olivia Omar Oscar Paula Pedro Priya Rafael Renée Rohan Sara
Sebastián Siobhán Sofia Søren Sophie Tomás Yuki Zara Zoë
"""
)

LAST_NAMES = _words(
    """
Abbott Ahmed Alvarez Andersen Bauer Becker Bennett Bernard Brown Castro Chen Clarke Costa Cruz
Dahl Davies Díaz Dubois Eriksson Evans Fernández Fischer Fitzgerald Flores Fontaine García
Gómez González Gupta Hansen Hartmann Hoffmann Hughes Ito Jansen Jensen Johansson Johnson Jones
Kaur Kelly Kim Klein Kowalski Kumar Larsen Laurent Lee Lefebvre López Martin Martínez Meyer
Moreau Morris Müller Murphy Nakamura Nielsen Novak Nowak O'Brien O'Connor Okafor Olsen Ortiz
Patel Perez Petersen Pereira Rossi Russo Sánchez Santos Sato Schmidt Schneider Schulz Silva
Singh Smith Sørensen Suzuki Svensson Tanaka Taylor Thomas Torres Varga Walsh Wang Weber
Williams Wilson Wójcik Yamamoto Yilmaz Young Zhang Zimmermann
"""
)

DOMAINS = _words(
    """
gmail.com outlook.com yahoo.com icloud.com proton.me hotmail.com gmx.de web.de orange.fr
libero.it fastmail.com mail.com hey.com acme-corp.com globex.io initech.com umbrella.co
northwind.net contoso.com fabrikam.com
"""
)

# Team names: one of these, a space, one of the next (then a number past the combinations).
TEAM_WORDS = _words(
    """
Northwind Bluebird Harbor Summit Cedar Maple Riverside Lakeside Granite Silver Golden Oak
Pioneer Atlas Beacon Meridian Evergreen Horizon Keystone Sterling
"""
)
TEAM_KINDS = _words(
    """
Dental Legal Clinic Studio Consulting Physio Advisors Coaching Tutors Vets Labs Partners
"""
)

TIMEZONES = _words(
    """
Europe/London Europe/Berlin Europe/Paris Europe/Madrid Europe/Warsaw America/New_York
America/Chicago America/Denver America/Los_Angeles America/Sao_Paulo Asia/Tokyo Asia/Kolkata
Asia/Singapore Australia/Sydney Africa/Lagos UTC
"""
)

PHONE_PREFIXES = ["+1", "+44", "+49", "+33", "+34", "+39", "+31", "+46", "+48", "+61"]

CANCELLATION_REASONS = [
    "Something came up, sorry.",
    "Double-booked on my side.",
    "Host unavailable (sick leave).",
    "Found another solution.",
    "Wrong time zone, will book again.",
    "Budget not approved this quarter.",
    "",
]

SEND_ERRORS = [
    "SMTPRecipientsRefused: 550 5.1.1 mailbox unavailable",
    "SMTPServerDisconnected: Connection unexpectedly closed",
    "TimeoutError: timed out",
    "SMTPDataError: 451 4.3.0 temporary local problem",
    "ConnectionRefusedError: [Errno 111] Connection refused",
]

_SPECIAL = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "æ": "ae"})


def ascii_slug(name: str) -> str:
    """``Søren`` → ``soren``, ``O'Brien`` → ``obrien``: the name as an email's local part."""
    plain = unicodedata.normalize("NFKD", name.translate(_SPECIAL))
    return re.sub(r"[^a-z0-9]", "", plain.encode("ascii", "ignore").decode().lower())
