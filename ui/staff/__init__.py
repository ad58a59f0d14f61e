"""Staff mode on the kiosk's own screen: the PIN pad, staff home, assisted applications,
today's work and the technician's screen (issue 7). `ui.staff.mode.StaffMode` wires them."""
