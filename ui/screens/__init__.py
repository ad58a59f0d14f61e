"""One screen per step of the applicant's trip."""
