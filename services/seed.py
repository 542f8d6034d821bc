"""The catalog's seed data: what a fresh catalog database is filled with.

Other services' seeds derive from this module (inventory imports SEED_PRODUCTS
so its SKUs always agree with the catalog's), so ids and SKUs here are stable.
Prices are US dollars written as decimal strings and turned into
google.type.Money without passing through floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["IMAGE_BASE", "SEED_CATEGORIES", "SEED_PRODUCTS", "SeedProduct"]

IMAGE_BASE = "https://images.shopmesh.example/products"


@dataclass(frozen=True)
class SeedProduct:
    id: str
    sku: str
    name: str
    description: str
    category: str
    price: str  # USD, e.g. "24.90"

    @property
    def price_nanos(self) -> int:
        return int(Decimal(self.price) * 1_000_000_000)

    @property
    def image_urls(self) -> tuple[str, ...]:
        return (f"{IMAGE_BASE}/{self.id}/main.jpg", f"{IMAGE_BASE}/{self.id}/detail.jpg")


# id -> display name
SEED_CATEGORIES: dict[str, str] = {
    "kitchen": "Kitchen & Dining",
    "home-office": "Home Office",
    "outdoor": "Outdoor & Camping",
    "audio": "Audio",
    "apparel": "Apparel",
    "books": "Books",
}

_P = SeedProduct
SEED_PRODUCTS: tuple[SeedProduct, ...] = (
    # Kitchen & Dining
    _P(
        "kitchen-espresso-cup",
        "KIT-1001",
        "Espresso Cup Set",
        "Four double-walled glass espresso cups, 80 ml each, that keep coffee hot and hands cool.",
        "kitchen",
        "24.90",
    ),
    _P(
        "kitchen-chef-knife",
        "KIT-1002",
        "Chef's Knife 20 cm",
        "Forged stainless steel chef's knife with a full tang and a riveted walnut handle.",
        "kitchen",
        "89.00",
    ),
    _P(
        "kitchen-cast-iron-skillet",
        "KIT-1003",
        "Cast Iron Skillet 26 cm",
        "Pre-seasoned cast iron skillet for searing, baking and open-fire cooking.",
        "kitchen",
        "39.50",
    ),
    _P(
        "kitchen-pour-over-kettle",
        "KIT-1004",
        "Gooseneck Pour-Over Kettle",
        "Stovetop gooseneck kettle with a built-in thermometer for precise pour-over coffee.",
        "kitchen",
        "45.00",
    ),
    _P(
        "kitchen-bamboo-board",
        "KIT-1005",
        "Bamboo Cutting Board",
        "Large end-grain bamboo cutting board with a juice groove, gentle on knife edges.",
        "kitchen",
        "29.99",
    ),
    _P(
        "kitchen-ceramic-bowls",
        "KIT-1006",
        "Stoneware Bowl Set",
        "Set of four glazed stoneware bowls, dishwasher and microwave safe.",
        "kitchen",
        "34.00",
    ),
    _P(
        "kitchen-french-press",
        "KIT-1007",
        "French Press 1 l",
        "Borosilicate glass French press with a fine steel mesh filter for full-bodied coffee.",
        "kitchen",
        "32.50",
    ),
    _P(
        "kitchen-linen-napkins",
        "KIT-1008",
        "Linen Napkins (6)",
        "Stone-washed linen napkins in natural oat, softer with every wash.",
        "kitchen",
        "27.00",
    ),
    _P(
        "kitchen-spice-grinder",
        "KIT-1009",
        "Adjustable Spice Grinder",
        "Ceramic burr spice and pepper grinder with six coarseness settings.",
        "kitchen",
        "19.95",
    ),
    # Home Office
    _P(
        "office-standing-desk",
        "OFF-2001",
        "Electric Standing Desk",
        "Dual-motor height-adjustable desk, 140 x 70 cm oak top, with four memory presets.",
        "home-office",
        "549.00",
    ),
    _P(
        "office-ergonomic-chair",
        "OFF-2002",
        "Ergonomic Mesh Chair",
        "Breathable mesh office chair with adjustable lumbar support and 4D armrests.",
        "home-office",
        "329.00",
    ),
    _P(
        "office-monitor-arm",
        "OFF-2003",
        "Gas Spring Monitor Arm",
        "Single monitor arm for screens up to 32 inches with cable management.",
        "home-office",
        "79.90",
    ),
    _P(
        "office-desk-lamp",
        "OFF-2004",
        "LED Desk Lamp",
        "Dimmable LED desk lamp with adjustable colour temperature and a USB-C charging port.",
        "home-office",
        "59.00",
    ),
    _P(
        "office-mechanical-keyboard",
        "OFF-2005",
        "Mechanical Keyboard",
        "Tenkeyless mechanical keyboard with hot-swappable tactile switches and PBT keycaps.",
        "home-office",
        "119.00",
    ),
    _P(
        "office-wireless-mouse",
        "OFF-2006",
        "Wireless Ergonomic Mouse",
        "Vertical wireless mouse that keeps the wrist in a natural handshake position.",
        "home-office",
        "49.99",
    ),
    _P(
        "office-notebook-set",
        "OFF-2007",
        "Dot Grid Notebook Set",
        "Three A5 dot grid notebooks with lay-flat binding and 120 gsm paper.",
        "home-office",
        "22.00",
    ),
    _P(
        "office-cable-tray",
        "OFF-2008",
        "Under-Desk Cable Tray",
        "Steel cable tray that mounts under any desk and hides power strips and cables.",
        "home-office",
        "35.00",
    ),
    _P(
        "office-webcam-4k",
        "OFF-2009",
        "4K Webcam",
        "4K webcam with autofocus, a privacy shutter and dual noise-cancelling microphones.",
        "home-office",
        "139.00",
    ),
    # Outdoor & Camping
    _P(
        "outdoor-2p-tent",
        "OUT-3001",
        "Two-Person Backpacking Tent",
        "Freestanding 1.6 kg tent with two doors, two vestibules and a waterproof fly.",
        "outdoor",
        "289.00",
    ),
    _P(
        "outdoor-sleeping-bag",
        "OUT-3002",
        "Down Sleeping Bag -5 C",
        "Lightweight 650-fill down mummy sleeping bag rated to minus five degrees Celsius.",
        "outdoor",
        "249.00",
    ),
    _P(
        "outdoor-headlamp",
        "OUT-3003",
        "Rechargeable Headlamp",
        "400-lumen rechargeable headlamp with a red night mode and a lock-out switch.",
        "outdoor",
        "39.95",
    ),
    _P(
        "outdoor-water-filter",
        "OUT-3004",
        "Squeeze Water Filter",
        "Hollow fibre water filter that removes bacteria and protozoa from streams and lakes.",
        "outdoor",
        "34.95",
    ),
    _P(
        "outdoor-trekking-poles",
        "OUT-3005",
        "Carbon Trekking Poles",
        "Pair of collapsible carbon fibre trekking poles with cork grips.",
        "outdoor",
        "119.00",
    ),
    _P(
        "outdoor-camp-stove",
        "OUT-3006",
        "Compact Camp Stove",
        "Canister camp stove with a piezo igniter that boils a litre of water in three minutes.",
        "outdoor",
        "54.00",
    ),
    _P(
        "outdoor-daypack-24l",
        "OUT-3007",
        "Daypack 24 l",
        "Ventilated 24 litre hiking daypack with a rain cover and hydration sleeve.",
        "outdoor",
        "89.00",
    ),
    _P(
        "outdoor-insulated-bottle",
        "OUT-3008",
        "Insulated Bottle 750 ml",
        "Vacuum-insulated stainless steel bottle that keeps drinks cold for 24 hours.",
        "outdoor",
        "29.00",
    ),
    _P(
        "outdoor-camp-chair",
        "OUT-3009",
        "Folding Camp Chair",
        "Packable aluminium camp chair that folds into a bag the size of a water bottle.",
        "outdoor",
        "69.00",
    ),
    # Audio
    _P(
        "audio-noise-cancelling-headphones",
        "AUD-4001",
        "Noise-Cancelling Headphones",
        "Over-ear wireless headphones with adaptive noise cancelling and 30-hour battery life.",
        "audio",
        "299.00",
    ),
    _P(
        "audio-true-wireless-earbuds",
        "AUD-4002",
        "True Wireless Earbuds",
        "Compact wireless earbuds with a charging case, IPX4 splash resistance and clear calls.",
        "audio",
        "129.00",
    ),
    _P(
        "audio-bookshelf-speakers",
        "AUD-4003",
        "Powered Bookshelf Speakers",
        "Pair of active bookshelf speakers with Bluetooth, optical input and a phono stage.",
        "audio",
        "379.00",
    ),
    _P(
        "audio-portable-speaker",
        "AUD-4004",
        "Portable Bluetooth Speaker",
        "Rugged waterproof Bluetooth speaker with 15 hours of playback.",
        "audio",
        "89.00",
    ),
    _P(
        "audio-turntable",
        "AUD-4005",
        "Belt-Drive Turntable",
        "Two-speed belt-drive turntable with a pre-mounted cartridge and a switchable preamp.",
        "audio",
        "249.00",
    ),
    _P(
        "audio-usb-microphone",
        "AUD-4006",
        "USB Condenser Microphone",
        "Cardioid USB microphone for podcasts and calls, with a headphone output.",
        "audio",
        "99.00",
    ),
    _P(
        "audio-studio-monitor-headphones",
        "AUD-4007",
        "Studio Monitor Headphones",
        "Closed-back wired studio headphones with a flat response and detachable cable.",
        "audio",
        "149.00",
    ),
    _P(
        "audio-dac-amp",
        "AUD-4008",
        "Portable DAC and Headphone Amp",
        "USB-C DAC and headphone amplifier that drives high-impedance headphones.",
        "audio",
        "119.00",
    ),
    _P(
        "audio-soundbar",
        "AUD-4009",
        "Compact Soundbar",
        "Compact soundbar with a built-in subwoofer, HDMI eARC and dialogue enhancement.",
        "audio",
        "229.00",
    ),
    # Apparel
    _P(
        "apparel-merino-tshirt",
        "APP-5001",
        "Merino Wool T-Shirt",
        "Lightweight merino wool t-shirt that regulates temperature and resists odour.",
        "apparel",
        "75.00",
    ),
    _P(
        "apparel-rain-jacket",
        "APP-5002",
        "Waterproof Rain Jacket",
        "Three-layer waterproof breathable rain jacket with taped seams and pit zips.",
        "apparel",
        "199.00",
    ),
    _P(
        "apparel-fleece-hoodie",
        "APP-5003",
        "Recycled Fleece Hoodie",
        "Warm hoodie made from recycled polyester fleece, with a kangaroo pocket.",
        "apparel",
        "85.00",
    ),
    _P(
        "apparel-chino-trousers",
        "APP-5004",
        "Stretch Chino Trousers",
        "Slim-fit organic cotton chinos with a little stretch for comfort.",
        "apparel",
        "69.00",
    ),
    _P(
        "apparel-wool-socks",
        "APP-5005",
        "Hiking Wool Socks (3)",
        "Three pairs of cushioned merino blend hiking socks.",
        "apparel",
        "36.00",
    ),
    _P(
        "apparel-down-vest",
        "APP-5006",
        "Packable Down Vest",
        "Light down vest that packs into its own pocket, for layering on cold mornings.",
        "apparel",
        "129.00",
    ),
    _P(
        "apparel-canvas-sneakers",
        "APP-5007",
        "Canvas Sneakers",
        "Classic low-top canvas sneakers with a vulcanised natural rubber sole.",
        "apparel",
        "59.00",
    ),
    _P(
        "apparel-leather-belt",
        "APP-5008",
        "Full-Grain Leather Belt",
        "Vegetable-tanned full-grain leather belt with a solid brass buckle.",
        "apparel",
        "48.00",
    ),
    _P(
        "apparel-beanie",
        "APP-5009",
        "Ribbed Wool Beanie",
        "Soft ribbed beanie knitted from responsibly sourced wool.",
        "apparel",
        "28.00",
    ),
    # Books
    _P(
        "books-designing-data-apps",
        "BOK-6001",
        "Designing Data-Intensive Applications",
        "The big ideas behind reliable, scalable and maintainable data systems.",
        "books",
        "49.99",
    ),
    _P(
        "books-site-reliability",
        "BOK-6002",
        "Site Reliability Engineering",
        "How Google runs production systems: error budgets, monitoring and incident response.",
        "books",
        "44.99",
    ),
    _P(
        "books-grpc-up-and-running",
        "BOK-6003",
        "gRPC: Up and Running",
        "Building cloud native applications with Go and Java for Docker and Kubernetes.",
        "books",
        "39.99",
    ),
    _P(
        "books-release-it",
        "BOK-6004",
        "Release It!",
        "Design and deploy production-ready software: stability patterns such as circuit breakers.",
        "books",
        "42.95",
    ),
    _P(
        "books-building-microservices",
        "BOK-6005",
        "Building Microservices",
        "Designing fine-grained systems: service boundaries, integration, deployment and testing.",
        "books",
        "54.99",
    ),
    _P(
        "books-the-pragmatic-programmer",
        "BOK-6006",
        "The Pragmatic Programmer",
        "Timeless advice on the craft of software development, from journeyman to master.",
        "books",
        "46.99",
    ),
    _P(
        "books-salt-fat-acid-heat",
        "BOK-6007",
        "Salt, Fat, Acid, Heat",
        "Mastering the elements of good cooking, with illustrations and recipes.",
        "books",
        "37.50",
    ),
    _P(
        "books-the-hobbit",
        "BOK-6008",
        "The Hobbit",
        "Bilbo Baggins' journey there and back again, illustrated edition.",
        "books",
        "16.99",
    ),
    _P(
        "books-field-guide-birds",
        "BOK-6009",
        "Field Guide to the Birds",
        "Compact field guide with 700 species illustrated for identification outdoors.",
        "books",
        "29.95",
    ),
)
