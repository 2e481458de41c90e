"""The UI's pages by area; each module's ``router(site)`` returns its APIRouter."""
