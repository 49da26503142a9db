"""Every text vaktpost shows people, in Swedish (the default `agent.language`). The keys
are the same as in en.py; tests/test_i18n_tables.py keeps the two tables in step."""

TEXT: dict[str, str] = {
    # Words many pages share.
    "agent": "Agent",
    "backup": "Säkerhetskopia",
    "rpo": "RPO",
    "never": "aldrig",
    "unknown": "okänt",
    "age": "ålder",
    "ready": "redo",
    "yes": "ja",
    "no": "nej",
    "system": "System",
    "status": "Status",
    "incident": "Incident",
    "fallback": "Reservrutin",
    "ack": "Kvittera",
    "ack_by_link": "Kvittera via länk: {url}",
    "drill": "ÖVNING",
    # The link to this language from a page in another one.
    "language_name": "På svenska",
    # A department's continuity state (alerting.views.DEPARTMENT_STATES).
    "state_normal": "Normalläge",
    "state_degraded": "Störning",
    "state_rto_breached": "RTO överskriden",
    "state_mtpd_breached": "MTPD överskriden",
    # An incident's status.
    "status_firing": "Pågår",
    "status_acknowledged": "Kvitterad",
    "status_resolved": "Åtgärdad",
    # A significant incident's report stages (alerting.significant.STAGES).
    "stage_early_warning": "tidig varning",
    "stage_notification": "incidentanmälan",
    "stage_final_report": "slutrapport",
    # The console (GET /) and the incident page.
    "system_up": "I drift",
    "system_down": "Nere",
    "system_impacted": "Påverkas av",
    "console_since": "sedan",
    "console_down_for": "nere i",
    "console_of": "av",
    "console_not_ready": "ej redo",
    "console_readiness": "Säkerhetskopior och återläsning i detalj",
    "console_open": "Öppna incidenter",
    "console_none_open": "Inga öppna incidenter.",
    "console_acked_by": "Kvitterad av",
    "console_comment": "Kommentar",
    "console_significant": "Betydande incidenter: rapportering",
    "console_due": "senast",
    "console_overdue": "försenad",
    "console_reported": "rapporterad",
    "console_maintenance": "Underhåll",
    "console_maintenance_now": "pågår nu",
    "console_maintenance_next": "nästa",
    "console_no_maintenance": "Inget underhåll planerat.",
    "console_trouble": "Leveransproblem",
    "console_failing": "misslyckas",
    "console_queued": "i kö",
    "console_history": "Tillgänglighet 90 dagar",
    "console_recent": "Incidenter senaste 30 dagarna",
    "console_no_recent": "Inga incidenter.",
    "console_timeline": "Händelser",
    "console_back": "Till översikten",
    "console_started": "Startade",
    "console_duration": "Varaktighet",
    "console_root": "Grundorsak",
    # On call, on the console.
    "oncall_title": "Beredskap",
    "oncall_on_duty": "I tjänst",
    "oncall_until": "till",
    "oncall_next": "Därefter",
    # The readiness report (table, printable page, console section).
    "readiness_title": "Beredskap för återställning",
    "readiness_generated": "Skapad",
    "readiness_up": "Uppe",
    "readiness_verified": "Verifierad",
    "readiness_restored": "Återställningstest",
    "readiness_reasons": "Skäl",
    "readiness_none": "inga säkerhetskopior konfigurerade",
    "readiness_not_ready": "INTE REDO",
    "readiness_state": "läge",
    "readiness_normal": "normalt",
    "readiness_degraded": "nedsatt",
    # Readiness reasons, translated from the English ones in the JSON (reasons.py).
    "ago": "för {age} sedan",
    "noun_file": "fil",
    "noun_snapshot": "ögonblicksbild",
    "noun_archive": "arkiv",
    "noun_successful_run": "lyckad körning",
    "reason_checksum_failed": "senaste kontrollsummeverifieringen misslyckades ({when})",
    "reason_checksum_never": "kontrollsumman har aldrig verifierats",
    "reason_repository_failed": "senaste förrådskontrollen misslyckades ({when})",
    "reason_repository_never": "förrådet har aldrig kontrollerats",
    "reason_repository_never_off": "förrådet har aldrig kontrollerats (check_every är av)",
    "reason_repository_stale": (
        "senaste godkända förrådskontroll för {age} sedan, ska vara inom {window} (2 × check_every)"
    ),
    "reason_restore_failed": "senaste återläsningstestet misslyckades ({when})",
    "reason_restore_never": "återläsning aldrig testad",
    "reason_restore_stale": "senaste lyckade återläsningstest för {age} sedan, gräns {limit}",
    "reason_below_min_size": "nyaste filen {size}, under min_size {min_size}",
    "reason_shrank": "nyaste filen krympte {shrink} mot den förra, gräns {limit}",
    "reason_not_configured": "kontrollen {check} finns inte",
    "reason_not_backup": "kontrollen {check} är en {type}-kontroll, ingen säkerhetskopiekontroll",
    "reason_no_result": "inget resultat ännu: kontrollen har inte körts",
    "reason_unchecked": "kunde inte kontrolleras: {detail}",
    "reason_none_found": "ingen {noun} hittad: {detail}",
    "reason_too_old": "nyaste {noun} är {age} gammal, RPO {rpo}",
    # Notifications (alerting/text.py): the word in brackets before the title ...
    "kind_firing": "LARM",
    "kind_repeat": "PÅMINNELSE",
    "kind_acknowledged": "KVITTERAT",
    "kind_resolved": "ÅTGÄRDAT",
    # ... and the lines under it.
    "note_down": "{what} är nere sedan {since} ({downtime}).",
    "note_up": "{what} fungerar igen efter {downtime}.",
    "note_checks": "Kontroller",
    "note_impacted": "Påverkas också",
    "note_caused_by": "Orsak: incident {id} (följdfel, inte eget fel).",
    "note_rto_short": "{left} kvar till RTO",
    "note_mtpd_short": "{left} kvar till MTPD",
    "note_exceeded": "överskriden",
    "note_rto_left": "Tid kvar till RTO: {left}.",
    "note_rto_over": "RTO ({rto}) är överskriden med {over}.",
    "note_mtpd_left": "Tid kvar till MTPD: {left}.",
    "note_mtpd_over": "MTPD ({mtpd}) är överskriden med {over}.",
    "note_ack": "Kvittera: vaktpost ack {id}  (eller POST /api/v1/incidents/{id}/ack)",
    "note_acked_by": "Kvitterat av {by}.",
    "note_acked_via": "Kvitterat av {by} via {via}.",
    "note_ack_comment": "Kommentar: {comment}",
    "note_ack_code": "Svara K {code} för att kvittera",
    "note_drill": "Detta är en övning (vaktpost drill), inget verkligt avbrott. Kvittera inte.",
    # The page behind an ack link (GET|POST /ack/TOKEN).
    "ack_page_title": "Kvittera larm",
    "ack_page_since": "Nere sedan {since}.",
    "ack_page_already": "Redan kvitterat av {by}.",
    "ack_page_done": "Kvitterat av {by}. Tack.",
    "ack_page_by_link": "kvitteringslänk",
    "ack_page_over": "Larmet är över: incidenten är avslutad. Länken gäller inte längre.",
    "ack_page_off": "Kvitteringslänkar är avstängda (agent.external_url saknas).",
    # Channel drills: the message, what the incident says, the ack link's page.
    "drill_title": "ÖVNING: {name}",
    "drill_body": "Detta är en övning av larmvägen, inget verkligt larm.",
    "drill_ack": "Svara K {code} inom {within} för att kvittera övningen.",
    "drill_missed": "övning {name} kvitterades inte inom {within}: {path} kan vara trasig",
    "drill_passed": "övning {name} kvitterad av {by} efter {after}",
    "drill_page_title": "ÖVNING: kvittera",
    "drill_page_already": "Redan kvitterad av {by}.",
    "drill_page_button": "Kvittera övningen",
    "drill_page_done": "Övningen kvitterad av {by}.",
    # `vaktpost drill`: the block under the timeline.
    "drill_cli_fallback": "Reservrutin",
    "drill_cli_no_fallback": "(ingen reservrutin angiven för systemet)",
    # Significant-incident reminders to the compliance channels.
    "significant_due": (
        "Betydande incident #{id} ({system}): {stage} ska lämnas senast {deadline}."
    ),
    "significant_late": (
        "Betydande incident #{id} ({system}): {stage} är FÖRSENAD, fristen var {deadline}."
    ),
    "significant_done": (
        'Markera som skickad: POST /api/v1/incidents/{id}/reported {{"stage": "{key}"}}'
    ),
    # A fleet agent's notice that the shared state store is down, and back.
    "store_unreachable": (
        "Vaktpost {agent}: tillståndsdatabasen nås inte: den gemensamma databasen ({where})"
        " har inte svarat sedan {since}. Kontrollerna körs vidare, men flottans"
        " eskaleringar och utskick står still tills den är tillbaka. Fel: {error}"
    ),
    "store_back": (
        "Vaktpost {agent}: tillståndsdatabasen nås igen: databasen ({where}) svarar igen"
        " efter {down}. Eskaleringarna fortsätter på sina sparade klockor."
    ),
}
