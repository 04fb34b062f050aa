"""Demo data at production size, for benchmarks: `flask --app portal seed-demo --users N
--credentials FILE [--seed S]`.

For N job seekers (N >= 100) it writes, in ONE transaction (a failure leaves nothing behind;
a second run on a seeded database is refused):

  organisations   ~N/500 (at most 200) of every kind, with valid organisation numbers
  users           N job seekers (verified, policy accepted, varied access sources, mostly sv),
                  N/100 coaches, one DPO with TOTP enrolled; Swedish names, unique addresses
                  on SEED_DOMAIN. last_active_at is spread over ~7 months: users 37, 137, ...
                  (i % 100 == 37, 1 %) are due for the inactivity warning, users 73, 173, ...
                  (1 %) were warned 1-13 days ago (keep token and sent mail, as the warning
                  job leaves them); nobody is due for deletion
  texts           5-15 per user (~10), 1 500-2 500 characters of cover-letter, CV or note
                  prose; one usage event per text, billed as texts/services.py bills it
  coach links     ~30 % active, some revoked, invited, cancelled, expired; coach reads
  consents        the two marketing purposes at registration, cookie-banner choices, later
                  changes (each event a change, as record_consent writes them); logins
  requests        N/10 open rights requests (received or needs completion; due dates around
                  today, some overdue, some extended), each with an encrypted ID copy (a
                  generated image, re-encoded by the upload code) and a signed receipt
                  payload; ~N/30 closed ones; a few expired exports; one audit event. No
                  receipt PDFs (WeasyPrint takes ~0.5 s each): receipt_blob_id is NULL, so a
                  seeded request's receipt download answers 404; its signature verifies
  known accounts  a heavy user with exactly 200 texts and a year of logins, consent changes,
                  coach reads and usage; a coach linked to 100 users (the heavy one among
                  them, sharing texts); the DPO

Every account has the same password, random per run, hashed once (portal.auth.passwords);
only the credentials file holds it. The file (mode 0600) is JSON with these keys:

  password                   the password of every seeded account
  heavy_user_email, heavy_user_id, heavy_user_text_count (200)
  heavy_user_text_id         one of the heavy user's texts
  heavy_user_shared_text_id  one of the heavy user's texts shared with the coach
  heavy_user_request_id      the heavy user's open rights request
  coach_email, coach_id, coach_user_count
  dpo_email, dpo_id
  dpo_totp_secret            base32; codes: pyotp.TOTP(secret).now() (no code used yet)
  open_request_id            an open request in the DPO queue (not the heavy user's)
  sample_user_emails         20 ordinary, recently active users
  users, coaches, open_requests, seed, domain, seeded_at (ISO 8601, UTC)

PostgreSQL gets COPY (psycopg), other databases executemany; rows are generated chunk by
chunk (CHUNK_USERS users at a time), so memory does not grow with N. Primary keys are given
explicitly (the tables are locked for the run on PostgreSQL) and the sequences set after.
"""
from __future__ import annotations

import io
import json
import os
import random
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from portal import audit
from portal.clock import STOCKHOLM, now
from portal.db import Base, db

if TYPE_CHECKING:
    from portal.requests.uploads import ProcessedUpload

SEED_DOMAIN = "seed.example.com"  # RFC 2606: never delivered; the login form accepts it
# (email_validator refuses special-use names such as .invalid)
HEAVY_EMAIL = "tung.anvandare" + "@" + SEED_DOMAIN
COACH_EMAIL = "jobbcoach" + "@" + SEED_DOMAIN
DPO_EMAIL = "dso" + "@" + SEED_DOMAIN
MIN_USERS = 100
CHUNK_USERS = 2000
HEAVY_TEXTS = 200
COACH_USERS = 100          # users 0..99 are linked to the known coach
DUE_SLOT, WARNED_SLOT = 37, 73  # i % 100: due for the inactivity warning / already warned
POLICY_VERSION = "2026-11"
ID_IMAGE_VARIANTS = 8


class SeedRefused(Exception):
    """The seed cannot run here; the message (Swedish) says why."""


# --- what a run makes ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """The sizes of one run, derived from the number of users."""

    users: int
    seed: int

    @property
    def organisations(self) -> int:
        return min(200, max(12, self.users // 500))

    @property
    def coaches(self) -> int:
        return max(3, self.users // 100)

    @property
    def open_requests(self) -> int:
        return self.users // 10

    def has_open_request(self, i: int) -> bool:
        """User 0 (heavy) and users 5, 15, 25, ...: exactly users // 10 in all."""
        return i == 0 or (i % 10 == 5 and i // 10 < self.open_requests - 1)

    @staticmethod
    def has_closed_request(i: int) -> bool:
        return i % 30 == 17

    @staticmethod
    def activity(i: int) -> str:
        """"due" (for the inactivity warning), "warned" or "active"; known users are active."""
        if i < COACH_USERS:
            return "active"
        return {DUE_SLOT: "due", WARNED_SLOT: "warned"}.get(i % 100, "active")


# --- words --------------------------------------------------------------------------------------

FIRST_NAMES = (
    "Anna", "Eva", "Maria", "Karin", "Sara", "Kristina", "Lena", "Emma", "Kerstin", "Marie",
    "Malin", "Ingrid", "Jenny", "Hanna", "Linda", "Annika", "Susanne", "Elin", "Johanna",
    "Sofia", "Ida", "Emelie", "Julia", "Camilla", "Helena", "Elisabeth", "Louise", "Amanda",
    "Maja", "Elsa", "Alice", "Ebba", "Linnea", "Frida", "Matilda", "Fatima", "Amina", "Zahra",
    "Leila", "Yasmin", "Nadia", "Hodan", "Aisha", "Jelena", "Agnieszka", "Tiina", "Ann-Sofie",
    "Åsa", "Märta", "Gunilla", "Birgitta", "Sanna", "Therese", "Lars", "Mikael", "Anders",
    "Johan", "Erik", "Per", "Karl", "Peter", "Thomas", "Jan", "Daniel", "Fredrik", "Hans",
    "Andreas", "Stefan", "Mohammed", "Bengt", "Magnus", "Mats", "Marcus", "Jonas", "Oskar",
    "Alexander", "Niklas", "Patrik", "Viktor", "Martin", "Henrik", "Emil", "Filip", "Lucas",
    "William", "Hugo", "Elias", "Ali", "Ahmed", "Omar", "Hassan", "Yusuf", "Abdi", "Mehmet",
    "Dragan", "Tomasz", "Nikola", "Jesper", "Robin", "Simon", "Björn", "Göran", "Håkan", "Åke",
    "Sven", "Oliver", "Noah",
)
LAST_NAMES = (
    "Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson",
    "Persson", "Svensson", "Gustafsson", "Pettersson", "Jonsson", "Jansson", "Hansson",
    "Bengtsson", "Jönsson", "Lindberg", "Jakobsson", "Magnusson", "Olofsson", "Lindström",
    "Lindqvist", "Lindgren", "Berg", "Axelsson", "Bergström", "Lundberg", "Lind", "Lundgren",
    "Lundqvist", "Mattsson", "Berglund", "Fredriksson", "Sandberg", "Henriksson", "Forsberg",
    "Sjöberg", "Wallin", "Ali", "Engström", "Mohammed", "Eklund", "Danielsson", "Lundin",
    "Håkansson", "Björk", "Bergman", "Gunnarsson", "Holm", "Wikström", "Samuelsson",
    "Isaksson", "Fransson", "Bergqvist", "Nyström", "Holmberg", "Arvidsson", "Löfgren",
    "Söderberg", "Nyberg", "Blomqvist", "Claesson", "Nordström", "Mårtensson", "Lundström",
    "Ahmed", "Viklund", "Björklund", "Eliasson", "Pålsson", "Hassan", "Berggren", "Sandström",
    "Lund", "Nordin", "Ström", "Åberg", "Hermansson", "Ekström", "Holmgren", "Sundberg",
    "Hedlund", "Dahlberg", "Hellström", "Sjögren", "Abrahamsson", "Falk", "Öberg",
    "Andreasson", "Blom", "Kovačević", "Nowak", "Yilmaz", "Korhonen",
)
CITIES = (
    "Stockholm", "Göteborg", "Malmö", "Uppsala", "Västerås", "Örebro", "Linköping",
    "Helsingborg", "Jönköping", "Norrköping", "Lund", "Umeå", "Gävle", "Borås", "Södertälje",
    "Eskilstuna", "Halmstad", "Växjö", "Karlstad", "Sundsvall", "Luleå", "Östersund",
    "Kristianstad", "Falun", "Skövde", "Trollhättan", "Kalmar", "Visby",
)
ROLES = (
    "lagerarbetare", "truckförare", "undersköterska", "barnskötare", "butikssäljare",
    "kundtjänstmedarbetare", "ekonomiassistent", "lönehandläggare", "receptionist",
    "lokalvårdare", "kock", "restaurangbiträde", "busschaufför", "lastbilschaufför",
    "elektriker", "snickare", "målare", "fastighetsskötare", "administratör",
    "projektkoordinator", "systemutvecklare", "IT-tekniker", "personlig assistent",
    "vårdbiträde", "lärarassistent", "fritidsledare", "säljare", "inköpare",
    "redovisningsekonom", "HR-assistent", "montör", "svetsare", "maskinoperatör",
    "produktionsledare", "lagerchef", "butikschef", "kassabiträde", "bagare",
)
COMPANY_PREFIXES = (  # the first half of a compound: "Norr" + "logistik AB"
    "Norr", "Väst", "Syd", "Öst", "Dal", "Ljus", "Kust", "Fjäll", "Sjö", "Berg",
    "Ek", "Lind", "Björk", "Gran", "Sol", "Älv", "Stads", "Nord", "Vätter", "Stor",
)
COMPANY_SUFFIXES = (
    "logistik AB", "bygg AB", "vård AB", "handel AB", "fastigheter AB", "elteknik AB",
    "transport AB", "städ AB", "data AB", "livs AB", "mekaniska AB", "restauranger AB",
    "omsorg AB", "verkstäder AB", "bageriet AB", "måleri AB",
)
SKILLS = (
    "truckkörning", "kassahantering", "Excel", "lagersystem", "patientnära vård",
    "kundservice", "bokföring", "svetsning", "arbetsmiljöarbete", "HLR och första hjälpen",
    "barnomsorg", "matlagning i storkök", "ellära", "CAD", "projektledning", "programmering",
    "nätverksteknik", "löneadministration", "inköp", "hygienrutiner", "ritningsläsning",
    "försäljning", "schemaläggning", "dokumentation",
)
TOOLS = (
    "Visma", "Fortnox", "SAP", "Excel", "Office 365", "Monitor", "kassasystem",
    "plocktruck", "journalsystemet Cosmic", "TakeCare", "Jira", "Teams", "Hogia",
)
TRAITS = (
    "noggrann", "ansvarstagande", "social", "flexibel", "lösningsorienterad", "strukturerad",
    "lugn", "positiv", "driven", "pålitlig", "serviceinriktad", "lyhörd", "nyfiken",
    "punktlig", "prestigelös",
)
SECTORS = (
    "lager och logistik", "vård och omsorg", "handel", "restaurang", "bygg", "industri",
    "transport", "kundtjänst", "ekonomi", "IT", "fastighetsskötsel", "skola och barnomsorg",
    "städ och lokalvård",
)
TASKS = (
    "inleveranser och inventering", "beställningar till leverantörer", "schemaläggning",
    "kassaredovisning", "introduktion av nya medarbetare", "daglig omvårdnad av brukare",
    "planering av körturer", "felsökning av elinstallationer", "kundreklamationer",
    "fakturering och påminnelser", "underhåll av maskiner", "kvalitetskontroller i produktionen",
    "varuexponering i butiken", "hygienrutiner i köket", "dokumentation i journalsystemet",
    "lönerapportering", "support till användare", "packning och utleveranser",
)
EDUCATIONS = (
    "Gymnasieexamen, Barn- och fritidsprogrammet", "Gymnasieexamen, Vård- och omsorgsprogrammet",
    "Gymnasieexamen, Handels- och administrationsprogrammet",
    "Gymnasieexamen, El- och energiprogrammet", "Gymnasieexamen, Bygg- och anläggningsprogrammet",
    "Yrkeshögskoleutbildning till lagerlogistiker", "Kandidatexamen i företagsekonomi",
    "Truckutbildning A+B", "Undersköterskeutbildning, Komvux", "Svenska för invandrare (SFI)",
    "Ekonomiassistent, yrkeshögskola", "Kockutbildning, Komvux", "Systemutvecklare .NET, YH",
)
GREETINGS = ("Hej!", "Hej,", "Till rekryteringsansvarig på {company},", "Bästa rekryterare,")
OPENINGS = (
    "Jag heter {name} och söker tjänsten som {role} hos {company}.",
    "Med stort intresse läste jag er annons om tjänsten som {role} i {city}.",
    "Jag vill härmed söka tjänsten som {role} på {company}, som jag hittade via Platsbanken.",
    "När jag såg att {company} söker en {role} kände jag direkt att det var något för mig.",
)
EXPERIENCE = (
    "Jag har arbetat i {years} år inom {sector} och trivs bäst när jag får ta ansvar för "
    "helheten.",
    "Hos {prev_company} arbetade jag som {prev_role} och ansvarade bland annat för {task}.",
    "I min nuvarande roll som {prev_role} har jag lärt mig {task} och att samarbeta med många "
    "olika yrkesgrupper.",
    "Jag är van att arbeta med {tool} och lär mig snabbt nya system.",
    "Under mina år på {prev_company} fick jag förtroendet att sköta {task}.",
    "Mina tidigare chefer beskriver mig som {trait} och {trait2}.",
    "Jag har goda kunskaper i {skill} och har även erfarenhet av {skill2}.",
    "Förutom mitt arbete har jag gått en kortare utbildning i {skill} via Arbetsförmedlingen.",
    "Det jag uppskattar mest i arbetet är kontakten med människor och känslan när ett jobb "
    "blir väl utfört.",
    "Jag har B-körkort och tillgång till egen bil, vilket gör att jag lätt tar mig till {city}.",
    "Jag trivs i en miljö där tempot ibland är högt och där man hjälps åt i arbetslaget.",
    "Jag tar gärna initiativ och ser till att saker blir gjorda, även när det är mycket att "
    "göra.",
    "Under en period arbetade jag extra som {prev_role} på helger, vilket gav mig erfarenhet "
    "av {task}.",
    "Jag har ett stort intresse för {sector} och följer utvecklingen inom området.",
    "Som {prev_role} var jag med och förbättrade rutinerna för {task}, vilket sparade tid "
    "för hela gruppen.",
    "Jag är noga med säkerhet och rutiner och har gått utbildning i {skill}.",
    "Jag beskriver mig själv som {trait}, och jag tycker om att lära mig nya saker.",
    "I mitt förra arbete hade jag ansvar för {task} tillsammans med två kollegor.",
)
MOTIVATION = (
    "Det som lockar mig med {company} är ert fokus på kvalitet och er goda arbetsmiljö.",
    "Jag vill gärna bidra med min erfarenhet och samtidigt utvecklas vidare som {role}.",
    "Jag har hört mycket gott om {company} från tidigare kollegor och skulle gärna bli en del "
    "av ert team.",
    "Tjänsten som {role} passar mig väl eftersom den kombinerar {skill} med kontakt med kunder.",
    "Jag tror att min bakgrund inom {sector} skulle komma till nytta hos er.",
    "Jag söker nu en ny utmaning där jag kan använda det jag har lärt mig och samtidigt växa "
    "i rollen.",
)
CLOSINGS = (
    "Jag ser fram emot att berätta mer om mig själv vid en intervju.",
    "Tack för att du tog dig tid att läsa mitt brev. Jag hoppas att vi hörs!",
    "Jag kan börja omgående eller enligt överenskommelse.",
    "Ring eller mejla mig gärna om du har några frågor.",
)
DUTIES = (
    "Ansvarade för {task}.", "Arbetade med {task} och {task2}.",
    "Planerade och följde upp {task} i samarbete med arbetsledningen.",
    "Introducerade nya kollegor och höll i {task}.", "Använde {tool} dagligen.",
    "Var skyddsombud under två år och arbetade med {skill}.",
)
NOTES = (
    "Förbered ett exempel på när jag löste ett problem i arbetslaget.",
    "Fråga om introduktionen och hur schemat ser ut de första veckorna.",
    "Berätta om {task} på {prev_company}.", "Ta med betyg och intyg i en mapp.",
    "Öva på att beskriva mina styrkor: {trait} och {trait2}.",
    "Ta reda på mer om {company} och deras kunder.",
    "Coachen tipsade om att korta ner profiltexten i cv:t.",
    "Skicka tackmejl dagen efter intervjun.", "Kolla restid till {city} med kollektivtrafik.",
    "Fråga om möjligheten till utbildning i {skill}.",
)
DETAILS = {
    "rectification": (
        "Mitt efternamn är felstavat i era uppgifter sedan jag bytte namn.",
        "Fakturaunderlaget anger fel organisation för mig. Jag tillhör en annan matchningsaktör.",
        "Telefonnumret i min profil är gammalt och jag kan inte ändra det själv.",
    ),
    "restriction": (
        "Jag har begärt rättelse och vill att ni begränsar behandlingen tills den är klar.",
        "Jag anser att uppgifterna om min organisation är felaktiga. Begränsa behandlingen "
        "medan ni utreder.",
    ),
    "objection": (
        "Jag invänder mot att mina uppgifter används i statistik.",
        "Jag vill inte att mina uppgifter används för att ta fram nya tjänster.",
        "Jag invänder mot att min organisation får se min användning i detalj.",
    ),
}
REJECTION_REASONS = (
    "Kopian av id-handlingen går inte att läsa. Du kan skicka in en ny begäran.",
    "Uppgifterna behövs för fakturering enligt bokföringslagen och kan inte raderas ännu.",
    "Namnet i begäran stämmer inte med id-handlingen.",
)
COMPLETION_NOTES = (
    "Bilden på id-handlingen är suddig. Ladda upp en skarpare bild.",
    "Id-handlingen har gått ut. Ladda upp en giltig handling.",
)
EXTENSION_REASONS = (
    "Begäran gäller uppgifter hos flera organisationer som vi behöver stämma av med.",
    "Vi har fått många begäranden just nu och behöver mer tid för att svara ordentligt.",
)
BROWSERS = (("Chrome", 55), ("Safari", 20), ("Edge", 10), ("Firefox", 8),
            ("Samsung Internet", 5), ("other", 2))
IP_FIRST_OCTETS = (78, 83, 85, 90, 94, 155, 158, 185, 193, 213)
ACCESS_SOURCES = (("stod_och_matchning", 45), ("kundval_rusta_och_matcha", 20),
                  ("fackforbund", 12), ("intresseorganisation", 6), ("omstallningsfond", 10),
                  ("egen_betalning", 7))
SOURCE_ORG_KIND = {"stod_och_matchning": "matchningsforetag",
                   "kundval_rusta_och_matcha": "matchningsforetag",
                   "fackforbund": "fackforbund", "intresseorganisation": "intresseorganisation",
                   "omstallningsfond": "omstallningsfond"}
_ASCII = str.maketrans({"å": "a", "ä": "a", "ö": "o", "é": "e", "ü": "u", "č": "c", "ć": "c"})


class _Keep(dict):
    """format_map() mapping that leaves the per-text placeholders ({role}, ...) in place."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Prose:
    """Plausible Swedish cover letters, CVs and notes of a wanted length, from sentence pools
    filled once (only name, role, company and city are set per text)."""

    POOL = 60  # filled variants per template

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.experience = self._pool(EXPERIENCE)
        self.motivation = self._pool(MOTIVATION)
        self.duties = self._pool(DUTIES)
        self.notes = ["– " + line for line in self._pool(NOTES) + self.experience]

    def _slots(self) -> _Keep:
        r = self.rng
        return _Keep(years=r.randint(2, 25), sector=r.choice(SECTORS), task=r.choice(TASKS),
                     task2=r.choice(TASKS), tool=r.choice(TOOLS), trait=r.choice(TRAITS),
                     trait2=r.choice(TRAITS), skill=r.choice(SKILLS), skill2=r.choice(SKILLS),
                     prev_role=r.choice(ROLES), prev_company=self.company())

    def _pool(self, templates: Iterable[str]) -> list[str]:
        return [t.format_map(self._slots()) for t in templates for _ in range(self.POOL)]

    def company(self) -> str:
        return self.rng.choice(COMPANY_PREFIXES) + self.rng.choice(COMPANY_SUFFIXES)

    def _fill_to(self, pool: list[str], target: int, start: int = 0) -> list[str]:
        """Sentences from the pool (none twice) until `target` characters, in paragraphs."""
        paragraphs, current, size = [], [], start
        for sentence in self.rng.sample(pool, max(1, (target - start) // 60)):
            if size >= target:
                break
            current.append(sentence)
            size += len(sentence) + 1
            if len(current) >= self.rng.randint(3, 5):
                paragraphs.append(" ".join(current))
                current = []
        if current:
            paragraphs.append(" ".join(current))
        return paragraphs

    def text(self, name: str, role: str) -> tuple[str, str, str]:
        """(title, kind, body) of one text by a user looking for work as `role`."""
        r = self.rng
        company, city = self.company(), r.choice(CITIES)
        target = r.randint(1450, 2350)  # the last sentence or entry overshoots a little
        pick = r.random()
        if pick < 0.65:
            title = r.choice(("Personligt brev – {role}, {company}", "Ansökan {role}, {company}",
                              "Brev till {company}", "Personligt brev {city}"))
            kind, body = "personligt_brev", self._letter(target)
        elif pick < 0.85:
            title = r.choice(("CV", "CV {year}", "Mitt cv – {role}", "CV (kort version)"))
            kind, body = "cv", self._cv(target)
        else:
            title = r.choice(("Inför intervjun hos {company}", "Mina styrkor",
                              "Anteckningar från coachmötet", "Frågor till arbetsgivaren"))
            kind, body = "ovrigt", self._notes(target)
        values = {"name": name, "role": role, "company": company, "city": city,
                  "year": r.randint(2023, 2026)}
        return title.format(**values), kind, body.format(**values)

    def _letter(self, target: int) -> str:
        r = self.rng
        head = [r.choice(GREETINGS), r.choice(OPENINGS)]
        tail = [r.choice(self.motivation), r.choice(CLOSINGS), "Med vänliga hälsningar\n{name}"]
        middle = self._fill_to(self.experience, target, sum(len(s) + 2 for s in head + tail))
        return "\n\n".join([*head, *middle, *tail])

    def _cv(self, target: int) -> str:
        r = self.rng
        head = ["{name}", "{city}", "", "PROFIL", " ".join(r.sample(self.experience, 2)), "",
                "ARBETSLIVSERFARENHET"]
        tail = ["UTBILDNING", f"{r.randint(1990, 2020)}  {r.choice(EDUCATIONS)}", "",
                "KOMPETENSER", _upper_first(", ".join(r.sample(SKILLS, 5))), "",
                "SPRÅK", "Svenska – flytande. Engelska – goda kunskaper.", "",
                "REFERENSER", "Lämnas på begäran."]
        entries, year = [], 2026
        size = sum(len(line) + 1 for line in head + tail)
        while size < target:
            start = year - r.randint(1, 4)
            entry = (f"{start}–{year}  {_upper_first(r.choice(ROLES))}, {self.company()}, "
                     f"{r.choice(CITIES)}\n{r.choice(self.duties)} {r.choice(self.duties)}\n")
            entries.append(entry)
            size += len(entry) + 1
            year = start
        return "\n".join(head + entries + tail)

    def _notes(self, target: int) -> str:
        lines, size = [], 0
        for line in self.rng.sample(self.notes, target // 40):
            if size >= target:
                break
            lines.append(line)
            size += len(line) + 1
        return "\n".join(lines)


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


# --- writing ------------------------------------------------------------------------------------

COLUMNS = {
    "organisations": ("id", "name", "org_number", "kind", "contact_email", "created_at"),
    "users": ("id", "email", "email_verified_at", "password_hash", "password_changed_at",
              "name", "phone", "org_number", "organisation_id", "locale", "role",
              "access_source", "status", "policy_version", "policy_accepted_at", "created_at",
              "last_active_at", "inactivity_warned_at", "totp_secret", "totp_enrolled_at",
              "totp_last_step"),
    "texts": ("id", "user_id", "title", "kind", "body", "shared_with_coach", "created_at",
              "updated_at"),
    "usage_events": ("id", "user_id", "organisation_id", "kind", "at"),
    "login_events": ("id", "user_id", "at", "succeeded", "ip_prefix", "browser"),
    "consent_events": ("id", "user_id", "purpose", "granted", "source", "at"),
    "coach_links": ("id", "user_id", "coach_id", "organisation_id", "coach_email", "coach_name",
                    "status", "invite_token_hash", "invited_at", "invite_expires_at",
                    "accepted_at", "ended_at"),
    "coach_reads": ("id", "link_id", "user_id", "text_id", "text_title", "at"),
    "stored_blobs": ("id", "ref", "user_id", "kind", "data", "created_at"),
    "rights_requests": ("id", "reference", "user_id", "kind", "status", "details",
                        "signature_name", "declaration_at", "received_at", "due_on",
                        "extension_months", "extension_reason", "decided_at", "decided_by",
                        "decision_reason", "receipt_payload", "receipt_signature",
                        "receipt_blob_id", "id_verified_by", "id_verified_at"),
    "request_uploads": ("id", "request_id", "user_id", "purpose", "received_kind",
                        "received_size", "sha256", "pages", "blob_id", "created_at",
                        "destroyed_at"),
    "request_events": ("id", "request_id", "at", "actor_id", "action", "note"),
    "link_tokens": ("id", "user_id", "purpose", "token_hash", "created_at", "expires_at",
                    "used_at", "new_email"),
    "mail_messages": ("id", "user_id", "template", "to_addr", "to_name", "subject",
                      "body_text", "body_html", "headers", "attachment_blob_id",
                      "attachment_name", "status", "attempts", "last_error", "created_at",
                      "sent_at"),
    "exports": ("id", "user_id", "status", "progress", "step", "error", "requested_at",
                "started_at", "finished_at", "expires_at", "blob_id", "size", "sha256"),
}
# Parents before children, so every foreign key already points at a written row.
WRITE_ORDER = ("organisations", "users", "texts", "usage_events", "login_events",
               "consent_events", "coach_links", "coach_reads", "stored_blobs",
               "rights_requests", "request_uploads", "request_events", "link_tokens",
               "mail_messages", "exports")
_COLUMN_SETS = {table: frozenset(columns) for table, columns in COLUMNS.items()}
EXECUTEMANY_BATCH = 1000


class BulkWriter:
    """Bulk inserts into the session's open transaction: COPY on PostgreSQL, executemany
    elsewhere. Hands out primary keys itself (the tables are locked on PostgreSQL)."""

    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection
        self.postgres = connection.dialect.name == "postgresql"
        self.next_ids: dict[str, int] = {}
        self.counts: dict[str, int] = defaultdict(int)
        self.tables = {name: Base.metadata.tables[name] for name in COLUMNS}
        for name, columns in COLUMNS.items():
            _check_columns(self.tables[name], columns)

    def lock(self) -> None:
        """PostgreSQL: no one else writes these tables until the seed commits (readers may)."""
        if self.postgres:
            self.connection.exec_driver_sql(
                f"LOCK TABLE {', '.join(WRITE_ORDER)} IN EXCLUSIVE MODE")

    def start_ids(self) -> None:
        for name in WRITE_ORDER:
            highest = self.connection.scalar(sa.select(sa.func.max(self.tables[name].c.id))) or 0
            if self.postgres:
                sequence = self.connection.scalar(
                    sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": name})
                used = self.connection.exec_driver_sql(
                    f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {sequence}"
                ).scalar()
                highest = max(highest, used)
            self.next_ids[name] = highest + 1

    def ids(self, table: str, count: int = 1) -> int:
        """The first of `count` consecutive new ids for `table`."""
        first = self.next_ids[table]
        self.next_ids[table] = first + count
        return first

    def write(self, table: str, rows: list[tuple]) -> None:
        if not rows:
            return
        self.counts[table] += len(rows)
        if self.postgres:
            self._copy(table, rows)
            return
        columns, target = COLUMNS[table], self.tables[table]
        for start in range(0, len(rows), EXECUTEMANY_BATCH):
            self.connection.execute(target.insert(), [dict(zip(columns, row)) for row in
                                                      rows[start:start + EXECUTEMANY_BATCH]])

    def _copy(self, table: str, rows: list[tuple]) -> None:
        columns = COLUMNS[table]
        json_at = [i for i, c in enumerate(columns)
                   if isinstance(self.tables[table].c[c].type, sa.JSON)]
        raw = self.connection.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                if json_at:
                    row = list(row)
                    for i in json_at:
                        row[i] = None if row[i] is None else json.dumps(row[i])
                copy.write_row(row)

    def finish(self) -> None:
        """PostgreSQL: move each sequence past the ids given out, so the app carries on."""
        if not self.postgres:
            return
        for name in WRITE_ORDER:
            if self.counts[name]:
                self.connection.execute(
                    sa.text("SELECT setval(pg_get_serial_sequence(:t, 'id'), :v)"),
                    {"t": name, "v": self.next_ids[name] - 1})

    def analyze(self, connection: sa.Connection) -> None:
        """PostgreSQL: fresh planner statistics for the tables just filled (after the commit,
        on the session's next connection)."""
        if self.postgres:
            for name in WRITE_ORDER:
                connection.exec_driver_sql(f"ANALYZE {name}")


def _check_columns(table: sa.Table, columns: tuple[str, ...]) -> None:
    """COPY skips Python-side defaults: every NOT NULL column must be given explicitly."""
    unknown = set(columns) - set(table.c.keys())
    missing = [c.name for c in table.c
               if not c.nullable and c.server_default is None and c.name not in columns]
    if unknown or missing:
        raise ValueError(f"seed columns for {table.name}: unknown {unknown}, missing {missing}")


class Rows:
    """The rows of one chunk, per table, in COLUMNS order."""

    def __init__(self) -> None:
        self.by_table: dict[str, list[tuple]] = defaultdict(list)

    def add(self, table: str, **values) -> None:
        if not values.keys() <= _COLUMN_SETS[table]:
            raise KeyError(f"unknown columns for {table}: {set(values) - _COLUMN_SETS[table]}")
        self.by_table[table].append(tuple(values.get(c) for c in COLUMNS[table]))

    def flush(self, writer: BulkWriter) -> None:
        for table in WRITE_ORDER:
            writer.write(table, self.by_table.pop(table, []))


# --- people -------------------------------------------------------------------------------------

@dataclass
class Person:
    """One generated account (what later rows need to know about it)."""

    index: int
    id: int
    name: str
    email: str
    locale: str
    organisation_id: int | None
    created_at: datetime
    last_active_at: datetime
    role: str = "user"
    # (id, title, created_at, shared) of each text written for the account
    texts: list[tuple[int, str, datetime, bool]] = field(default_factory=list)
    # (id, status, organisation id, accepted_at, end of access) of an accepted coach link
    link: tuple[int, str, int | None, datetime, datetime] | None = None


@dataclass(frozen=True)
class Org:
    id: int
    kind: str


def _local_part(name: str) -> str:
    """"Åsa Öberg" -> "asa.oberg" (ASCII, lower case, as addresses are stored)."""
    folded = name.lower().translate(_ASCII).encode("ascii", "ignore").decode()
    return ".".join(folded.split())


def _org_number(rng: random.Random, prefix: str, taken: set[str]) -> str:
    from portal.validation import luhn_valid

    while True:
        body = prefix + "".join(str(rng.randint(0, 9)) for _ in range(9 - len(prefix)))
        number = next(body + str(d) for d in range(10) if luhn_valid(body + str(d)))
        if number not in taken:
            taken.add(number)
            return number


def _hex(rng: random.Random, bits: int = 256) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


# --- the seeder ---------------------------------------------------------------------------------

class Seeder:
    """Generates and writes one run's rows (see the module docstring for what and why)."""

    def __init__(self, plan: Plan, writer: BulkWriter, password_hash: str,
                 progress: Callable[[str], None]) -> None:
        from portal.retention.services import warning_cutoff

        self.plan, self.writer, self.hash, self.progress = plan, writer, password_hash, progress
        self.rng = random.Random(plan.seed)
        self.prose = Prose(random.Random(plan.seed + 1))
        self.now = now()
        self.cutoff = warning_cutoff(self.now)
        self.orgs: list[Org] = []
        self.orgs_by_kind: dict[str, list[Org]] = defaultdict(list)
        self.coaches: list[Person] = []
        self.coaches_by_org: dict[int, list[Person]] = defaultdict(list)
        self.dpo: Person | None = None
        self.totp_secret = ""
        self.known: dict = {}
        self.sample_emails: list[str] = []
        self.id_copies: list[tuple[ProcessedUpload, bytes]] = []  # (upload, stored ZIP)
        self.signing_key = None
        self.declarations: dict[str, str] = {}
        self.warning_subjects: dict[tuple[str, date], str] = {}

    # --- small helpers
    def between(self, start: datetime, end: datetime) -> datetime:
        if end <= start:
            return start
        return start + timedelta(seconds=self.rng.uniform(0, (end - start).total_seconds()))

    def ago(self, low_days: float, high_days: float) -> datetime:
        return self.now - timedelta(days=self.rng.uniform(low_days, high_days))

    def name(self) -> str:
        return f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"

    def run(self) -> dict:
        started = time.monotonic()
        self._prepare_requests()
        self._organisations()
        self._staff()
        users_base = self.writer.ids("users", self.plan.users)
        for start in range(0, self.plan.users, CHUNK_USERS):
            stop = min(start + CHUNK_USERS, self.plan.users)
            rows = Rows()
            for i in range(start, stop):
                self._user(rows, i, users_base + i)
            rows.flush(self.writer)
            self.progress(f"  {stop:>9,} av {self.plan.users:,} användare "
                          f"({time.monotonic() - started:.0f} s)".replace(",", "\u00a0"))
        return self._credentials()

    # --- organisations, coaches and the DPO
    def _organisations(self) -> None:
        from portal.billing.models import Organisation

        rows, names = Rows(), self._org_names()
        taken = set(self.writer.connection.scalars(sa.select(Organisation.org_number)))
        count = self.plan.organisations
        m, f, i, o = ("matchningsforetag", "fackforbund", "intresseorganisation",
                      "omstallningsfond")
        kinds = (m, f, i, o, m, m, m, f, m, m, i, m, m, o, m, f, m, m, m, m)  # every kind early
        first = self.writer.ids("organisations", count)
        for n in range(count):
            kind = kinds[n % len(kinds)]
            org = Org(first + n, kind)
            rows.add("organisations", id=org.id, name=names[kind].pop(), kind=kind,
                     org_number=_org_number(self.rng, "556" if kind == "matchningsforetag"
                                            else "802", taken),
                     contact_email=f"faktura.org{n + 1}@{SEED_DOMAIN}"
                     if self.rng.random() < 0.7 else None,
                     created_at=self.ago(730, 1000))
            self.orgs.append(org)
            self.orgs_by_kind[kind].append(org)
        rows.flush(self.writer)

    def _org_names(self) -> dict[str, list[str]]:
        """Made-up names of each kind's usual shape, shuffled (enough for 200 organisations)."""
        p, c = COMPANY_PREFIXES, CITIES
        names = {
            "matchningsforetag": [*(f"{x} Matchning AB" for x in p),
                                  *(f"{x} Rekrytering & Coachning AB" for x in p),
                                  *(f"Jobbcentrum {x} AB" for x in c),
                                  *(f"Vägen till jobb {x} AB" for x in c),
                                  *(f"Karriärcoacherna i {x} AB" for x in c),
                                  *(f"{x}s Matchning & Coachning AB" for x in LAST_NAMES)],
            "fackforbund": [*(f"Fackförbundet Service & Handel, avd. {x}" for x in c),
                            *(f"Tjänstemannaförbundet {x}" for x in p)],
            "intresseorganisation": [*(f"Föreningen Arbete för alla, {x}" for x in c),
                                     *(f"Riksföreningen Ny start, {x}" for x in c)],
            "omstallningsfond": [*(f"Omställningsstiftelsen {x}" for x in p),
                                 *(f"Trygghetsfonden {x}" for x in c)],
        }
        for kind_names in names.values():
            self.rng.shuffle(kind_names)
        return names

    def _staff(self) -> None:
        """The DPO (with TOTP) and the coaches; coach 0 is the known coach."""
        from portal.crypto import keyring
        from portal.requests import totp

        rows = Rows()
        first = self.writer.ids("users", 1 + self.plan.coaches)
        created = self.ago(560, 720)
        self.totp_secret = totp.new_secret()
        self.dpo = Person(-1, first, "Dana Dataskyddsombud", DPO_EMAIL, "sv", None, created,
                          self.ago(0, 0.5), role="dpo")
        self._account(rows, self.dpo, access_source=None,
                      totp_secret=keyring().encrypt(self.totp_secret.encode(),
                                                    totp._context(first)),  # as enrol() does
                      totp_enrolled_at=created + timedelta(minutes=5))
        self._logins(rows, self.dpo, 5)
        matching = self.orgs_by_kind["matchningsforetag"]
        for n in range(self.plan.coaches):
            org = matching[0] if n == 0 else self.orgs[(n - 1) % len(self.orgs)]
            name = self.name()
            email = COACH_EMAIL if n == 0 else f"{_local_part(name)}.c{n}@{SEED_DOMAIN}"
            coach = Person(-1, first + 1 + n, name, email, "sv", org.id, self.ago(560, 720),
                           self.ago(0, 3), role="coach")
            self._account(rows, coach, access_source=None)
            self._logins(rows, coach, self.rng.randint(2, 6))
            self.coaches.append(coach)
            if n:
                self.coaches_by_org[org.id].append(coach)
        rows.flush(self.writer)

    def _account(self, rows: Rows, person: Person, access_source: str | None, **extra) -> None:
        verified = person.created_at + timedelta(minutes=self.rng.uniform(1, 40))
        rows.add("users", id=person.id, email=person.email, email_verified_at=verified,
                 password_hash=self.hash, password_changed_at=person.created_at,
                 name=person.name, organisation_id=person.organisation_id,
                 locale=person.locale, role=person.role, access_source=access_source,
                 status="active", policy_version=POLICY_VERSION,
                 policy_accepted_at=person.created_at, created_at=person.created_at,
                 last_active_at=person.last_active_at, **extra)

    # --- one job seeker and everything of theirs
    def _job_seeker(self, rows: Rows, i: int, user_id: int) -> tuple[Person, datetime | None]:
        """The account of user i (the known coach's users come from its organisation)."""
        r = self.rng
        source = ("stod_och_matchning" if i < COACH_USERS else
                  r.choices([s for s, _ in ACCESS_SOURCES], [w for _, w in ACCESS_SOURCES])[0])
        org = (self.coaches[0].organisation_id if i < COACH_USERS else
               r.choice(self.orgs_by_kind[SOURCE_ORG_KIND[source]]).id
               if source in SOURCE_ORG_KIND else None)
        name = self.name()
        email = HEAVY_EMAIL if i == 0 else f"{_local_part(name)}.{i}@{SEED_DOMAIN}"
        last_active, warned = self._activity(i)
        span = 400 if i == 0 else r.uniform(14, 540)
        person = Person(i, user_id, name, email, "en" if r.random() < 0.08 else "sv", org,
                        min(last_active - timedelta(hours=1), self.now - timedelta(days=span)),
                        last_active)
        phone = f"+467{r.choice('02369')}{r.randint(0, 9_999_999):07d}" if r.random() < 0.4 \
            else None
        self._account(rows, person, access_source=source, phone=phone,
                      inactivity_warned_at=warned)
        return person, warned

    def _user(self, rows: Rows, i: int, user_id: int) -> None:
        """Job seeker i with everything of theirs; user 0 is the heavy user."""
        r = self.rng
        heavy = i == 0
        person, warned = self._job_seeker(rows, i, user_id)
        if (len(self.sample_emails) < 20 and i >= COACH_USERS and warned is None
                and person.last_active_at > self.cutoff):
            self.sample_emails.append(person.email)
        self._coach_link(rows, person)
        self._texts(rows, person, HEAVY_TEXTS if heavy else r.randint(5, 15))
        self._logins(rows, person, 365 if heavy else r.randint(1, 8))
        self._consents(rows, person, 24 if heavy else (r.randint(1, 2) if r.random() < 0.2
                                                        else 0))
        self._coach_reads(rows, person, 180 if heavy else r.randint(0, 6))
        if warned is not None:
            self._warning_mail(rows, person, warned)
        if self.plan.has_open_request(i):
            self._open_request(rows, person, heavy)
        if Plan.has_closed_request(i) or heavy:
            for _ in range(2 if heavy else 1):
                self._closed_request(rows, person)
        if heavy or r.random() < 0.01:
            self._exports(rows, person, 3 if heavy else r.randint(1, 2))
        if heavy:
            self.known["heavy"] = person

    def _activity(self, i: int) -> tuple[datetime, datetime | None]:
        """(last_active_at, inactivity_warned_at), as the inactivity rule expects them."""
        from portal.retention.services import INACTIVITY, warning_cutoff

        kind = Plan.activity(i)
        if i == 0:
            return self.now - timedelta(minutes=30), None
        if kind == "due":  # past the warning point, not yet at 6 months, never warned
            return self.between(self.now - INACTIVITY + timedelta(days=1),
                                self.cutoff - timedelta(hours=1)), None
        if kind == "warned":  # warned 1-13 days ago; deletion comes 14 days after the warning
            warned = self.ago(1, 13)
            return warning_cutoff(warned) - timedelta(hours=self.rng.uniform(1, 48)), warned
        if self.rng.random() < 0.55:
            return self.ago(0, 30), None
        return self.between(self.cutoff + timedelta(days=1), self.now - timedelta(days=30)), None

    def _coach_link(self, rows: Rows, person: Person) -> None:
        r = self.rng
        if person.index < COACH_USERS:
            status = "active"
        else:
            roll = r.random()
            status = ("active" if roll < 0.30 else "revoked" if roll < 0.34 else
                      "invited" if roll < 0.36 else "cancelled" if roll < 0.37 else
                      "expired" if roll < 0.39 else None)
        if status is None:
            return
        if status == "invited" and person.last_active_at < self.now - timedelta(days=13):
            status = "expired"  # an invitation older than 14 days has run out
        coach = self._coach_for(person)
        end = person.last_active_at
        invited = (self.between(max(person.created_at, self.now - timedelta(days=13)), end)
                   if status == "invited" else
                   self.between(person.created_at, end - (end - person.created_at) * 0.3))
        if person.index == 0:
            invited = person.created_at + timedelta(days=20)
        link_id = self.writer.ids("coach_links")
        values = dict(id=link_id, user_id=person.id, organisation_id=coach.organisation_id,
                      coach_email=coach.email, coach_name=coach.name, status=status,
                      invite_token_hash=_hex(r), invited_at=invited,
                      invite_expires_at=invited + timedelta(days=14))
        if status in ("active", "revoked"):
            accepted = invited + timedelta(hours=r.uniform(1, 72))
            values.update(coach_id=coach.id, accepted_at=accepted)
            until = self.now
            if status == "revoked":
                until = values["ended_at"] = self.between(accepted, max(accepted, end))
            person.link = (link_id, status, coach.organisation_id, accepted, until)
        elif status == "cancelled":
            values["ended_at"] = invited + timedelta(days=r.uniform(0.1, 10))
        elif status == "expired":
            values["ended_at"] = invited + timedelta(days=14, minutes=r.uniform(1, 60))
        rows.add("coach_links", **values)

    def _coach_for(self, person: Person) -> Person:
        if person.index < COACH_USERS:
            return self.coaches[0]
        local = self.coaches_by_org.get(person.organisation_id)
        return self.rng.choice(local) if local else self.rng.choice(self.coaches[1:])

    def _texts(self, rows: Rows, person: Person, count: int) -> None:
        r = self.rng
        first = self.writer.ids("texts", count)
        role = r.choice(ROLES)
        active_link = person.link if person.link and person.link[1] == "active" else None
        share_rate = 0.4 if active_link else 0.05
        start = person.created_at + timedelta(hours=1)
        for n in range(count):
            title, kind, body = self.prose.text(person.name, role if r.random() < 0.7
                                                else r.choice(ROLES))
            created = self.between(start, person.last_active_at)
            updated = created if r.random() < 0.6 else self.between(created,
                                                                    person.last_active_at)
            shared = r.random() < share_rate
            rows.add("texts", id=first + n, user_id=person.id, title=title, kind=kind,
                     body=body, shared_with_coach=shared, created_at=created,
                     updated_at=updated)
            person.texts.append((first + n, title, created, shared))
            billed = (active_link[2] if active_link and created >= active_link[3]
                      else person.organisation_id)  # as texts.services.billing_organisation_for
            rows.add("usage_events", id=self.writer.ids("usage_events"), user_id=person.id,
                     organisation_id=billed, kind="text_created", at=created)

    def _logins(self, rows: Rows, person: Person, count: int) -> None:
        """Logins (a failed one now and then), the last one at last_active_at; the network
        /24 and browser family only, as record_login keeps them."""
        r = self.rng
        home = f"{r.choice(IP_FIRST_OCTETS)}.{r.randint(0, 255)}.{r.randint(0, 255)}.0/24"
        browser = r.choices([b for b, _ in BROWSERS], [w for _, w in BROWSERS])[0]
        moments = sorted(self.between(person.created_at, person.last_active_at)
                         for _ in range(count - 1)) + [person.last_active_at]
        first = self.writer.ids("login_events", count)
        for n, at in enumerate(moments):
            elsewhere = (f"{r.choice(IP_FIRST_OCTETS)}.{r.randint(0, 255)}."
                         f"{r.randint(0, 255)}.0/24")
            rows.add("login_events", id=first + n, user_id=person.id, at=at,
                     succeeded=n == count - 1 or r.random() >= 0.07,
                     ip_prefix=home if r.random() < 0.8 else elsewhere, browser=browser)

    def _consents(self, rows: Rows, person: Person, changes: int) -> None:
        """Registration choices, the cookie banner, later changes: only real changes."""
        r = self.rng
        state: dict[str, bool] = {}

        def record(purpose: str, granted: bool, source: str, at: datetime) -> None:
            if state.get(purpose) is granted:
                return
            state[purpose] = granted
            rows.add("consent_events", id=self.writer.ids("consent_events"),
                     user_id=person.id, purpose=purpose, granted=granted, source=source,
                     at=at)

        registered = person.created_at
        record("newsletter", r.random() < 0.7, "registration", registered)
        record("offers", r.random() < 0.5, "registration", registered)
        if r.random() < 0.65 or person.index == 0:
            at = registered + timedelta(seconds=r.uniform(5, 300))
            roll = r.random()
            choice = ((True, True, True) if roll < 0.45 else (False, False, False)
                      if roll < 0.8 else (True, r.random() < 0.5, False))
            for purpose, granted in zip(("cookies_functional", "cookies_statistics",
                                         "cookies_marketing"), choice):
                record(purpose, granted, "cookie_banner", at)
        for at in sorted(self.between(registered, person.last_active_at)
                         for _ in range(changes)):
            purpose = r.choice(("newsletter", "offers", "cookies_statistics"))
            granted = not state.get(purpose, False)
            source = ("unsubscribe_link" if not granted and purpose != "cookies_statistics"
                      and r.random() < 0.4 else "settings")
            record(purpose, granted, source, at)

    def _coach_reads(self, rows: Rows, person: Person, count: int) -> None:
        if person.link is None:
            return
        link_id, _status, _org, since, until = person.link
        readable = [t for t in person.texts if t[3] and t[2] < until]
        for _ in range(count if readable else 0):
            text_id, title, created, _shared = self.rng.choice(readable)
            rows.add("coach_reads", id=self.writer.ids("coach_reads"), link_id=link_id,
                     user_id=person.id, text_id=text_id, text_title=title[:200],
                     at=self.between(max(created, since), until))

    def _warning_mail(self, rows: Rows, person: Person, warned: datetime) -> None:
        """What send_inactivity_warning leaves once the mail is delivered: the keep token and
        the delivery record (content blanked, as the mail job does after sending)."""
        from portal.retention.services import INACTIVITY, WARNING_LEAD

        delete_at = max(person.last_active_at + INACTIVITY, warned + WARNING_LEAD)
        rows.add("link_tokens", id=self.writer.ids("link_tokens"), user_id=person.id,
                 purpose="keep_account", token_hash=_hex(self.rng), created_at=warned,
                 expires_at=delete_at)
        rows.add("mail_messages", id=self.writer.ids("mail_messages"), user_id=person.id,
                 template="inactivity_warning", to_addr=person.email, to_name=person.name,
                 subject=self._warning_subject(person.locale, delete_at), body_text="",
                 body_html="", headers={}, status="sent", attempts=1, created_at=warned,
                 sent_at=warned + timedelta(seconds=self.rng.uniform(2, 60)))

    def _warning_subject(self, locale: str, delete_at: datetime) -> str:
        from flask import render_template
        from flask_babel import force_locale, format_date

        key = (locale, delete_at.astimezone(STOCKHOLM).date())
        if key not in self.warning_subjects:
            with force_locale(locale):
                subject = render_template("email/inactivity_warning.subject.txt",
                                          delete_at=delete_at, format_date=format_date)
            self.warning_subjects[key] = " ".join(subject.split())
        return self.warning_subjects[key]

    def _exports(self, rows: Rows, person: Person, count: int) -> None:
        """Exports whose seven days have passed: the file is gone, the record stays."""
        for _ in range(count):
            requested = self.between(person.created_at, min(person.last_active_at,
                                                            self.now - timedelta(days=8)))
            finished = requested + timedelta(seconds=self.rng.uniform(3, 40))
            rows.add("exports", id=self.writer.ids("exports"), user_id=person.id,
                     status="expired", progress=100, step="done", requested_at=requested,
                     started_at=requested + timedelta(seconds=1), finished_at=finished,
                     expires_at=finished + timedelta(days=7), size=self.rng.randint(40_000,
                                                                                    900_000),
                     sha256=_hex(self.rng))

    # --- rights requests
    def _prepare_requests(self) -> None:
        """ID-copy images (re-encoded by the upload code, as stored) and the receipt key."""
        from flask import current_app
        from flask_babel import force_locale

        from portal.requests import signing
        from portal.requests.services import DECLARATION, pages_archive
        from portal.requests.uploads import process_id_upload

        for n in range(ID_IMAGE_VARIANTS):
            received = _id_card_image(random.Random(self.plan.seed * 100 + n),
                                      "PNG" if n % 2 else "JPEG")
            processed = process_id_upload(received, f"id-{n}.jpg")
            self.id_copies.append((processed, pages_archive(processed.pages)))
        self.signing_key = signing.load_private_key(current_app.config["SIGNING_KEY"])
        for locale in ("sv", "en"):
            with force_locale(locale):
                self.declarations[locale] = str(DECLARATION)

    def _request_row(self, rows: Rows, person: Person, kind: str, received: datetime,
                     **values) -> tuple[int, ProcessedUpload, bytes]:
        """The request with its receipt payload and signature, its ID copy and "received"."""
        from portal.requests import signing
        from portal.requests.deadlines import due_date

        req_id = self.writer.ids("rights_requests")
        processed, archive = self.rng.choice(self.id_copies)
        reference = f"DSR-{received.astimezone(STOCKHOLM).year}-{req_id:06d}"
        payload = {"reference": reference, "kind": kind, "name": person.name,
                   "signature_name": person.name,
                   "declaration": self.declarations[person.locale],
                   "received_at": received.isoformat(), "upload_sha256": processed.sha256,
                   "due_on": due_date(received).isoformat()}
        values = {"due_on": due_date(received), "extension_months": 0, **values}
        rows.add("rights_requests", id=req_id, reference=reference, user_id=person.id,
                 kind=kind, details=self.rng.choice(DETAILS[kind]) if kind in DETAILS else "",
                 signature_name=person.name, declaration_at=received, received_at=received,
                 receipt_payload=payload,
                 receipt_signature=signing.sign(self.signing_key, payload), **values)
        rows.add("request_events", id=self.writer.ids("request_events"), request_id=req_id,
                 at=received, actor_id=person.id, action="received")
        return req_id, processed, archive

    def _upload(self, rows: Rows, person: Person, req_id: int, processed: ProcessedUpload,
                archive: bytes | None, at: datetime, destroyed: datetime | None = None) -> None:
        """The ID copy as file_request stores it: one encrypted blob (a ZIP of the re-encoded
        pages), or, once destroyed, only its hash."""
        from portal.crypto import keyring
        from portal.storage import _context as blob_context

        blob_id = None
        if destroyed is None:
            blob_id = self.writer.ids("stored_blobs")
            ref = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            rows.add("stored_blobs", id=blob_id, ref=ref, user_id=person.id, kind="id_copy",
                     data=keyring().encrypt(archive, blob_context(ref)), created_at=at)
        rows.add("request_uploads", id=self.writer.ids("request_uploads"), request_id=req_id,
                 user_id=person.id, purpose="id_copy", received_kind=processed.kind,
                 received_size=processed.received_size, sha256=processed.sha256,
                 pages=len(processed.pages), blob_id=blob_id, created_at=at,
                 destroyed_at=destroyed)

    def _open_request(self, rows: Rows, person: Person, heavy: bool) -> None:
        """An undecided request: received (some extended) or waiting for completion."""
        from portal.requests.deadlines import due_date

        r = self.rng
        kind = ("rectification" if heavy else
                r.choices(("erasure", "rectification", "restriction", "objection"),
                          (40, 25, 15, 20))[0])
        roll = r.random()
        extended = roll < 0.08 and not heavy
        received = self.ago(25, 80) if extended else self.ago(0.05, 36)
        months = r.choice((1, 1, 2)) if extended else 0
        values = {"status": "needs_completion" if 0.08 <= roll < 0.2 else "received",
                  "extension_months": months}
        if extended:
            values.update(due_on=due_date(received, months),
                          extension_reason=r.choice(EXTENSION_REASONS))
        req_id, processed, archive = self._request_row(rows, person, kind, received, **values)
        self._upload(rows, person, req_id, processed, archive, received)
        if extended:
            self._dpo_event(rows, req_id, received + timedelta(days=r.uniform(3, 25)),
                            "extended", values["extension_reason"])
        if values["status"] == "needs_completion":
            self._dpo_event(rows, req_id, self.between(received, min(
                self.now, received + timedelta(days=10))), "completion_requested",
                r.choice(COMPLETION_NOTES))
        if heavy:
            self.known["heavy_request_id"] = req_id
        elif "open_request_id" not in self.known:
            self.known["open_request_id"] = req_id

    def _closed_request(self, rows: Rows, person: Person) -> None:
        """A decided or withdrawn request: the ID copy destroyed, only its hash kept."""
        r = self.rng
        kind = r.choice(("erasure", "rectification", "restriction", "objection"))
        outcome = r.choice(("rejected", "withdrawn") if kind in ("erasure", "restriction")
                           else ("approved", "rejected", "withdrawn"))
        received = self.between(person.created_at, person.last_active_at
                                - timedelta(days=1))
        closed = received + timedelta(days=r.uniform(1, 25))
        values: dict = {"status": outcome}
        if outcome != "withdrawn":
            values.update(decided_at=closed, decided_by=self.dpo.id, id_verified_by=self.dpo.id,
                          id_verified_at=closed,
                          decision_reason=r.choice(REJECTION_REASONS)
                          if outcome == "rejected" else None)
        req_id, processed, _archive = self._request_row(rows, person, kind, received, **values)
        self._upload(rows, person, req_id, processed, None, received, destroyed=closed)
        if outcome == "withdrawn":
            for action in ("withdrawn", "upload_destroyed"):
                rows.add("request_events", id=self.writer.ids("request_events"),
                         request_id=req_id, at=closed, actor_id=person.id, action=action)
        else:
            self._dpo_event(rows, req_id, closed, outcome, values["decision_reason"])

    def _dpo_event(self, rows: Rows, req_id: int, at: datetime, action: str,
                   note: str | None) -> None:
        rows.add("request_events", id=self.writer.ids("request_events"), request_id=req_id,
                 at=min(at, self.now), actor_id=self.dpo.id, action=action, note=note)

    # --- what the benchmark gets to know
    def _credentials(self) -> dict:
        heavy: Person = self.known["heavy"]
        shared = next(t[0] for t in heavy.texts if t[3])
        return {
            "password": None,  # filled in by seed_at_scale
            "heavy_user_email": heavy.email, "heavy_user_id": heavy.id,
            "heavy_user_text_count": len(heavy.texts), "heavy_user_text_id": heavy.texts[0][0],
            "heavy_user_shared_text_id": shared,
            "heavy_user_request_id": self.known["heavy_request_id"],
            "coach_email": self.coaches[0].email, "coach_id": self.coaches[0].id,
            "coach_user_count": min(COACH_USERS, self.plan.users),
            "dpo_email": self.dpo.email, "dpo_id": self.dpo.id,
            "dpo_totp_secret": self.totp_secret,
            "open_request_id": self.known["open_request_id"],
            "sample_user_emails": self.sample_emails,
            "users": self.plan.users, "coaches": self.plan.coaches,
            "open_requests": self.plan.open_requests, "seed": self.plan.seed,
            "domain": SEED_DOMAIN, "seeded_at": self.now.isoformat(),
        }


def _id_card_image(rng: random.Random, fmt: str) -> bytes:
    """A small made-up ID card (no real person), as a phone would send it."""
    from PIL import Image, ImageDraw

    pastel = tuple(rng.randint(190, 240) for _ in range(3))
    image = Image.new("RGB", (560, 350), pastel)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 560, 54), fill=(40, 70, 120))
    draw.text((20, 18), "SVERIGE  IDENTITETSKORT  (EXEMPEL)", fill=(255, 255, 255))
    draw.rectangle((24, 80, 184, 290), fill=tuple(c - 60 for c in pastel))
    draw.ellipse((64, 110, 144, 190), fill=(120, 100, 90))
    values = (rng.choice(LAST_NAMES), rng.choice(FIRST_NAMES),
              f"{rng.randint(1950, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
              f"{rng.randint(2027, 2031)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
    for row, (label, value) in enumerate(zip(("Efternamn", "Förnamn", "Född", "Giltig till"),
                                             values)):
        draw.text((210, 86 + row * 50), label, fill=(60, 60, 60))
        draw.text((210, 104 + row * 50), value, fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


# --- the command's work -------------------------------------------------------------------------

def new_password() -> str:
    """The run's one password (random, never printed)."""
    return "-".join(secrets.token_urlsafe(6) for _ in range(3))


def _already_seeded() -> bool:
    from portal.auth.models import User

    return db.session.scalar(sa.select(sa.func.count()).select_from(User)
                             .where(User.email == DPO_EMAIL)) > 0


def _write_private(path: Path, data: dict) -> Path:
    """Write JSON to a new file beside `path`, readable by the owner only; returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2)
    return tmp


def seed_at_scale(users: int, seed: int, credentials: Path,
                  progress: Callable[[str], None] = lambda _line: None) -> dict:
    """Fill the database in one transaction and write the credentials file; returns row
    counts per table and the elapsed seconds. SeedRefused if the database is seeded."""
    from portal.auth.passwords import hash_password

    if users < MIN_USERS:
        raise SeedRefused(f"Ange minst {MIN_USERS} användare.")
    started = time.monotonic()
    writer = BulkWriter(db.session.connection())
    writer.lock()
    if _already_seeded():
        db.session.rollback()
        raise SeedRefused(f"Databasen innehåller redan seedade data (konton på {SEED_DOMAIN}). "
                          "Inget har ändrats. Seeda en tom databas.")
    writer.start_ids()
    password = new_password()
    plan = Plan(users=users, seed=seed)
    tmp = None
    try:
        seeder = Seeder(plan, writer, hash_password(password), progress)
        data = seeder.run() | {"password": password}
        writer.finish()
        counts = dict(writer.counts)
        audit.record("seed.bulk_created", users=users, coaches=plan.coaches,
                     open_requests=plan.open_requests, seed=seed, rows=sum(counts.values()))
        tmp = _write_private(credentials, data)
        progress("  sparar (commit) …")
        db.session.commit()
    except BaseException:
        db.session.rollback()
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, credentials)
    writer.analyze(db.session.connection())
    db.session.commit()
    return {"counts": counts, "seconds": time.monotonic() - started}
