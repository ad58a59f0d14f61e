"""Device drivers and simulators behind the ports in kiosk.ports; devices.registry picks them."""
