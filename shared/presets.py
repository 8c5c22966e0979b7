"""Part-name presets of the ShapeNetPart and PartNetE categories.

The 16 ShapeNetPart categories and the 45 PartNet-Ensembled (PartNetE) categories PartSLIP evaluates
on, as the part lists those benchmarks label. Plain data for the add-on's preset menu and for
scripts; a preset is only a starting point for the part names."""

from __future__ import annotations


def _table(text: str) -> dict[str, tuple[str, ...]]:
    """``Category: part, part, ...`` lines as ``{category: parts}``, in the lines' order."""
    rows = (line.split(":") for line in text.strip().splitlines())
    return {name.strip(): tuple(part.strip() for part in parts.split(",")) for name, parts in rows}


SHAPENET_PART: dict[str, tuple[str, ...]] = _table(
    """
    Airplane: body, wing, tail, engine
    Bag: handle, body
    Cap: panel, peak
    Car: roof, hood, wheel, body
    Chair: back, seat, leg, arm
    Earphone: earcup, headband, cord
    Guitar: head, body, neck
    Knife: blade, handle
    Lamp: base, shade, canopy, tube
    Laptop: keyboard, screen
    Motorbike: gas tank, seat, wheel, handlebar, light, body
    Mug: handle, body
    Pistol: barrel, handle, trigger
    Rocket: body, fin, nose
    Skateboard: wheel, deck, foot strap
    Table: top, leg, support
    """
)

PARTNET_E: dict[str, tuple[str, ...]] = _table(
    """
    Bottle: lid
    Box: lid
    Bucket: handle
    Camera: button, lens
    Cart: wheel
    Chair: arm, back, leg, seat, wheel
    Clock: hand
    CoffeeMachine: button, container, knob, lid
    Dishwasher: door, handle
    Dispenser: head, lid
    Display: base, screen, support
    Door: frame, door, handle
    Eyeglasses: body, leg
    Faucet: spout, switch
    FoldingChair: seat
    Globe: base, sphere
    Kettle: lid, handle, spout
    Keyboard: cord, key
    KitchenPot: lid, handle
    Knife: blade
    Lamp: base, body, bulb, shade
    Laptop: keyboard, screen, shaft, touchpad, camera
    Lighter: lid, wheel, button
    Microwave: display, door, handle, button
    Mouse: button, cord, wheel
    Oven: door, knob
    Pen: cap, button
    Phone: lid, button
    Pliers: leg
    Printer: button
    Refrigerator: door, handle
    Remote: button
    Safe: door, switch, button
    Scissors: blade, handle, screw
    Stapler: body, lid
    StorageFurniture: door, drawer, handle
    Suitcase: handle, wheel
    Switch: switch
    Table: door, drawer, leg, tabletop, wheel, handle
    Toaster: button, slider
    Toilet: lid, seat, button
    TrashCan: footpedal, lid, door
    USB: cap, rotation
    WashingMachine: door, button
    Window: window
    """
)

PRESETS: dict[str, tuple[str, ...]] = {
    **{f"ShapeNetPart: {k}": v for k, v in SHAPENET_PART.items()},
    **{f"PartNetE: {k}": v for k, v in PARTNET_E.items()},
}
