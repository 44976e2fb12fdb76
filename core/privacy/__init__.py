"""Personal data: what leaves the machine, and what people without the role see.

- :mod:`core.privacy.redact` -- what Claude gets: personal columns withheld, call ids replaced by
  opaque references, phone numbers, emails and addresses removed from text (:class:`Redactor`);
- :mod:`core.privacy.refs` -- the opaque call references (``calls.ref``);
- :mod:`core.privacy.mask` -- masked numbers for viewers, CSV exports and log lines;
- :mod:`core.privacy.settings` -- ``[privacy]``.
"""

from core.privacy.mask import mask_call_id, mask_frame, mask_phone, mask_record, mask_text
from core.privacy.redact import STRICT, Policy, Redactor, check_sql_columns
from core.privacy.refs import new_ref, reveal

__all__ = ["STRICT", "Policy", "Redactor", "check_sql_columns", "mask_call_id", "mask_frame", "mask_phone",
           "mask_record", "mask_text", "new_ref", "reveal"]
