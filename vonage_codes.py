"""Meanings of Vonage's SMS API codes: send statuses and receipt err-codes.

Source: Vonage SMS API reference (send response `status`, delivery receipt `err-code`).
"""

SEND_STATUS_MEANINGS = {
    "0": "Success",
    "1": "Throttled: you are sending faster than your account allows",
    "2": "Missing parameters",
    "3": "Invalid parameters",
    "4": "Invalid credentials",
    "5": "Internal error at Vonage",
    "6": "Invalid message: Vonage could not route it",
    "7": "Number barred",
    "8": "Partner account barred",
    "9": "Partner quota exceeded",
    "10": "Too many existing binds",
    "11": "Account not enabled for HTTP",
    "12": "Message too long",
    "14": "Invalid signature",
    "15": "Invalid sender address",
    "22": "Invalid network code",
    "23": "Invalid callback URL",
    "29": "Non-whitelisted destination: a trial account can only send to its verified numbers",
    "32": "Signature and API secret both sent",
    "33": "Number de-activated",
}

ERR_CODE_MEANINGS = {
    "0": "Delivered",
    "1": "Unknown",
    "2": "Absent subscriber (temporary)",
    "3": "Absent subscriber (permanent)",
    "4": "Call barred by user",
    "5": "Portability error",
    "6": "Anti-spam rejection",
    "7": "Handset busy",
    "8": "Network error",
    "9": "Illegal number (opted out)",
    "10": "Illegal message",
    "11": "Unroutable",
    "12": "Destination unreachable",
    "13": "Subscriber age restriction",
    "14": "Number blocked by carrier",
    "15": "Prepaid insufficient funds",
    "50": "Entity filter",
    "51": "Header (sender) filter",
    "52": "Content filter",
    "53": "Consent filter",
    "54": "Regulation error",
    "99": "General error",
}


def err_code_meaning(code: str | None) -> str | None:
    """Return the meaning of a receipt err-code, or None for an empty code."""
    if code is None or code == "":
        return None
    return ERR_CODE_MEANINGS.get(code, f"Undocumented err-code {code}")


def send_status_meaning(code: str | None) -> str | None:
    """Return the meaning of a send-time status code, or None for an empty code."""
    if code is None or code == "":
        return None
    return SEND_STATUS_MEANINGS.get(code, f"Undocumented status {code}")
